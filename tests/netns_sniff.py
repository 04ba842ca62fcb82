"""Print every IPv4 UDP packet that arrives on an interface, one JSON object per line.

Run inside a test's network namespace: ``python netns_sniff.py IFACE``.  Prints ``ready``
once capturing.  Uses a packet socket (root), so it sees datagrams whatever their
destination, not only those a UDP socket here would be given.
"""

from __future__ import annotations

import json
import socket
import struct
import sys

ETH_P_IP = 0x0800


def main(interface: str) -> None:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    sock.bind((interface, ETH_P_IP))
    print("ready", flush=True)
    while True:
        packet = sock.recv(65535)
        if len(packet) < 28 or packet[9] != socket.IPPROTO_UDP:
            continue
        header = (packet[0] & 0x0F) * 4
        sport, dport = struct.unpack("!HH", packet[header : header + 4])
        record = {
            "src": socket.inet_ntoa(packet[12:16]),
            "dst": socket.inet_ntoa(packet[16:20]),
            "sport": sport,
            "dport": dport,
            "payload": packet[header + 8 :].decode("latin-1"),
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
