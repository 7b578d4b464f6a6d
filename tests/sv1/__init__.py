"""Tests of sv2proxy.sv1 (a package so its module names never clash with other test dirs)."""
