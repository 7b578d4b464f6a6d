"""Tests of sv2proxy.codec (a package so its module names never clash with other test dirs)."""
