#!/usr/bin/env python3
"""Send raw Ethernet frames on an interface (tests): one hex-encoded frame per line on stdin.
Usage (inside a netns): python3 rawframes.py IFACE < frames.hex   -> prints the number sent."""
import socket
import sys

s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
n = 0
failed = 0
for line in sys.stdin:
    line = line.strip()
    if line:
        try:
            s.send(bytes.fromhex(line))
            n += 1
        except OSError:
            failed += 1  # e.g. shorter than an Ethernet header: the kernel refuses it
print(n, failed)
