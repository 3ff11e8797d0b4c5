"""Opens N keep-alive connections to the server, makes one request on each,
leaves them idle, and prints the server's resident memory (kB) then."""
import socket
import sys
import time

host, port, n, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
conns = []
for _ in range(n):
    s = socket.create_connection((host, port), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n")
    s.recv(4096)
    conns.append(s)
time.sleep(1)
with open(f"/proc/{pid}/status") as f:
    rss = next(line.split()[1] for line in f if line.startswith("VmRSS"))
print(rss)
for s in conns:
    s.close()
