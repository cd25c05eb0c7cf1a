"""Seed 004 (004_41db9c39b506eeca.txt) program 2A, as the seed writes it (without the sysctl calls), timed."""
import json
import socket
import sys
import time

n = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
s.bind(("127.0.0.1", 0))
s.listen(16)
addr = s.getsockname()
t0 = time.perf_counter_ns()
for i in range(n):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
    c.connect(addr)
    sc, _ = s.accept()
    sc.close()
    c.close()
print(json.dumps({"loop2a": (time.perf_counter_ns() - t0) / n}))
