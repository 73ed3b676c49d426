#!/usr/bin/env python3
"""HTTP fixture for the in-repo conformance corpus (standard library only).

Binds 127.0.0.1 on the port given with --port (0: a free one the kernel picks) and prints
`port N` on its first stdout line so that whoever started it knows where it listens. The
experiments reach it through configuration `{type: env, key: CORPUS_BASE_URL}`.

  /ok             200 text/plain   "fine"
  /doc            200 application/json   a fixed document
  /doc-utf8       200 application/json; charset=utf-8   the same document
  /code/<n>       <n> text/plain   "code <n>"
  /delay/<ms>     waits <ms> (at most 20 s), then 200 text/plain "done"
  /mirror         200 application/json   method, query, JSON body and x-*/authorization headers
  anything else   404 text/plain   "missing"
"""
import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

DOCUMENT = {
    "health": "green",
    "build": 17,
    "shards": ["a", "b", "c", "d"],
    "owner": {"team": "platform", "oncall": ["ana", "bo"]},
}


def number_after(path, prefix, default):
    try:
        return int(path[len(prefix):])
    except ValueError:
        return default


class Fixture(BaseHTTPRequestHandler):
    server_version = "corpus-fixture/1"
    sys_version = ""

    def log_message(self, *_):
        pass

    def reply(self, code, text, media_type="text/plain"):
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def serve(self):
        url = urlsplit(self.path)
        size = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(size).decode("utf-8", "replace") if size else ""
        if url.path == "/ok":
            return self.reply(200, "fine")
        if url.path == "/doc":
            return self.reply(200, json.dumps(DOCUMENT), "application/json")
        if url.path == "/doc-utf8":
            return self.reply(200, json.dumps(DOCUMENT), "application/json; charset=utf-8")
        if url.path.startswith("/code/"):
            code = number_after(url.path, "/code/", 400)
            return self.reply(code, f"code {code}")
        if url.path.startswith("/delay/"):
            time.sleep(min(number_after(url.path, "/delay/", 0), 20000) / 1000)
            return self.reply(200, "done")
        if url.path == "/mirror":
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw
            seen = {
                "method": self.command,
                "query": dict(parse_qsl(url.query)),
                "body": body,
                "headers": {
                    k.lower(): v
                    for k, v in self.headers.items()
                    if k.lower().startswith("x-") or k.lower() == "authorization"
                },
            }
            return self.reply(200, json.dumps(seen, sort_keys=True), "application/json")
        return self.reply(404, "missing")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = serve


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that gave up (an activity timeout) is expected here


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    port = parser.parse_args().port
    server = QuietServer(("127.0.0.1", port), Fixture)
    print(f"port {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
