#!/usr/bin/env python3
"""A JSON-RPC counting proxy for benchmarks: forwards every POST on 127.0.0.1:PORT to
UPSTREAM and counts the calls (a batch counts each of its calls). GET /count returns the
count. It measures any build's requests from outside, so two builds can be compared.

Usage: rpc-count-proxy.py PORT UPSTREAM_URL
"""
import json
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, UPSTREAM = int(sys.argv[1]), sys.argv[2]
count = 0
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, kind="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.reply(200, str(count).encode(), "text/plain")

    def do_POST(self):
        global count
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            calls = json.loads(body)
            n = len(calls) if isinstance(calls, list) else 1
        except ValueError:
            n = 1
        with lock:
            count += n
        request = urllib.request.Request(
            UPSTREAM, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                self.reply(r.status, r.read())
        except urllib.error.HTTPError as e:
            self.reply(e.code, e.read())
        except OSError as e:
            self.reply(502, json.dumps({"error": str(e)}).encode())


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
