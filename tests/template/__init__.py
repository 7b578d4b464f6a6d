"""Tests of sv2proxy.template (a package so its module names never clash with other test dirs)."""
