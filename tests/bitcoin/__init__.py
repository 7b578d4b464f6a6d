"""Tests of sv2proxy.bitcoin (a package so its module names never clash with other test dirs)."""
