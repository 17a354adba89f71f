#!/usr/bin/env python3
"""Stand-in for a TLS registry behind a token server, in front of the real docker-registry.

The Debian docker-registry has no token server and does not paginate tag lists, so this serves
what such registries do (registry.k8s.io's backend, docker.io, ghcr.io): HTTPS with a test CA,
a Bearer challenge on /v2/, tokens from its own /token realm bound to one scope, and tag lists
cut into pages of --page tags with `Link: <...>; rel="next"`. The tags themselves come from the
real registry (--upstream). Blob and manifest requests (HEAD, GET, POST, PUT, PATCH) are passed
to the real registry too, reads with a `pull` token of that repository, writes only with a
`pull,push` one, and upload locations are rewritten to point back here (--public). Every
request is logged to --log, one JSON object per line, so a test can see what the client did.
Test infrastructure only, never shipped.
"""
import argparse
import json
import re
import secrets
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--listen", required=True)
parser.add_argument("--cert", required=True)
parser.add_argument("--key", required=True)
parser.add_argument("--upstream", required=True)
parser.add_argument("--realm", required=True)
parser.add_argument("--service", required=True)
parser.add_argument("--page", type=int, default=3)
parser.add_argument("--log", required=True)
parser.add_argument("--public", help="this server's own https://host:port, for upload locations")
args = parser.parse_args()

TOKENS = {}
LOCK = threading.Lock()
TAGS = re.compile(r"/v2/((?:[a-z0-9._-]+/)*[a-z0-9._-]+)/tags/list")
CONTENT = re.compile(r"/v2/((?:[a-z0-9._-]+/)*[a-z0-9._-]+)/(blobs|manifests)/.*")


def log(entry):
    with LOCK, open(args.log, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def challenge(self, scope):
        value = f'Bearer realm="{args.realm}",service="{args.service}"'
        if scope:
            value += f',scope="{scope}"'
        self.reply(401, {"errors": [{"code": "UNAUTHORIZED"}]}, [("WWW-Authenticate", value)])

    def granted(self):
        auth = self.headers.get("Authorization", "")
        with LOCK:
            return TOKENS.get(auth[7:]) if auth.startswith("Bearer ") else None

    def proxy(self, name):
        """A blob or manifest request, passed to the real registry with the right scope."""
        write = self.command in ("POST", "PUT", "PATCH", "DELETE")
        scope = f"repository:{name}:pull,push" if write else f"repository:{name}:pull"
        granted = self.granted()
        auth = self.headers.get("Authorization", "")
        log({"method": self.command, "path": urllib.parse.urlsplit(self.path).path,
             "auth": auth.split(" ")[0] if auth else "", "granted": granted})
        allowed = granted == scope or (not write and granted == f"repository:{name}:pull,push")
        if not allowed:
            if self.headers.get("Content-Length"):
                self.rfile.read(int(self.headers["Content-Length"]))
            return self.challenge(scope)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() == "content-type"}
        if self.headers.get_all("Accept"):
            headers["Accept"] = ", ".join(self.headers.get_all("Accept"))
        request = urllib.request.Request(f"{args.upstream}{self.path}", data=body,
                                         headers=headers, method=self.command)
        try:
            response = urllib.request.urlopen(request)
        except urllib.error.HTTPError as e:
            response = e
        data = response.read()
        self.send_response(response.status if hasattr(response, "status") else response.code)
        for k, v in response.headers.items():
            if k.lower() in ("content-length", "connection", "transfer-encoding", "server", "date"):
                continue
            if k.lower() == "location" and args.public:
                v = v.replace(args.upstream, args.public)
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_HEAD(self):
        match = CONTENT.fullmatch(urllib.parse.urlsplit(self.path).path)
        if not match:
            return self.reply(404, {"errors": [{"code": "NOT_FOUND"}]})
        self.proxy(match.group(1))

    def do_POST(self):
        self.do_HEAD()

    def do_PUT(self):
        self.do_HEAD()

    def do_PATCH(self):
        self.do_HEAD()

    def do_GET(self):
        content = CONTENT.fullmatch(urllib.parse.urlsplit(self.path).path)
        if content:
            return self.proxy(content.group(1))
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        auth = self.headers.get("Authorization", "")
        log({
            "path": url.path,
            "query": url.query,
            "scope": query.get("scope", [None])[0],
            "auth": auth.split(" ")[0] if auth else "",
        })
        if url.path == "/token":
            if query.get("service") != [args.service] or len(query.get("scope", [])) != 1:
                return self.reply(400, {"error": "bad service or scope"})
            token = secrets.token_hex(16)
            with LOCK:
                TOKENS[token] = query["scope"][0]
            return self.reply(200, {"token": token, "expires_in": 300})
        if url.path == "/v2/" or url.path == "/v2":
            if not auth.startswith("Bearer ") or auth[7:] not in TOKENS:
                return self.challenge(None)
            return self.reply(200, {})
        match = TAGS.fullmatch(url.path)
        if not match:
            return self.reply(404, {"errors": [{"code": "NOT_FOUND"}]})
        name = match.group(1)
        scope = f"repository:{name}:pull"
        with LOCK:
            granted = TOKENS.get(auth[7:]) if auth.startswith("Bearer ") else None
        if granted != scope:
            return self.challenge(scope)
        try:
            with urllib.request.urlopen(f"{args.upstream}/v2/{name}/tags/list") as r:
                tags = json.load(r).get("tags") or []
        except urllib.error.HTTPError as e:
            return self.reply(e.code, {"errors": [{"code": "NAME_UNKNOWN"}]})
        tags = sorted(tags)
        last = query.get("last", [None])[0]
        start = tags.index(last) + 1 if last in tags else 0
        n = min(int(query.get("n", [args.page])[0]), args.page)
        page = tags[start : start + n]
        headers = []
        if start + n < len(tags):
            nxt = urllib.parse.urlencode({"n": args.page, "last": page[-1]})
            headers.append(("Link", f'</v2/{name}/tags/list?{nxt}>; rel="next"'))
        self.reply(200, {"name": name, "tags": page}, headers)

    def log_message(self, *a):
        pass


host, port = args.listen.rsplit(":", 1)
server = ThreadingHTTPServer((host, int(port)), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(args.cert, args.key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
