"""The same work as bench/sys.ts, through Python's socket module: the reference rates."""
import json
import socket
import sys
import time

def getsockopt_ns(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t0 = time.perf_counter_ns()
    for _ in range(n):
        s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    t1 = time.perf_counter_ns()
    s.close()
    return (t1 - t0) / n

def connect_accept_close_ns(n):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    addr = listener.getsockname()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.connect(addr)
        sc, _ = listener.accept()
        sc.close()
        c.close()
    t1 = time.perf_counter_ns()
    listener.close()
    return (t1 - t0) / n

if __name__ == "__main__":
    calls, loops = int(sys.argv[1]), int(sys.argv[2])
    print(json.dumps({"getsockopt": getsockopt_ns(calls), "connectAcceptClose": connect_accept_close_ns(loops)}))
