"""Tests of sv2proxy.upstream (a package so its module names never clash with other test dirs)."""
