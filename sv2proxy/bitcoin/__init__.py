"""Pure Bitcoin consensus helpers (no I/O, no reactor, no logging).

hashing (SHA256d, merkle trees), target (nBits, targets, difficulty), serialize (CompactSize,
transactions, headers, blocks), script (pushes, BIP34 height, BIP141 commitment), address
(addresses -> scriptPubKey per network) and descriptor (addr()/raw() with BIP380 checksums).
"""
