"""Smart HTTP for the simulator's bare repositories: `git http-backend` run as CGI per request."""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import tempfile

from starlette.requests import Request
from starlette.responses import Response


def basic_password(header: str | None) -> str | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


async def run_http_backend(
    request: Request, project_root: str, path_info: str, remote_user: str | None
) -> Response:
    body = await request.body()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": project_root,
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": project_root,
        "REQUEST_METHOD": request.method,
        "PATH_INFO": path_info,
        "QUERY_STRING": request.url.query,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": request.client.host if request.client else "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "GATEWAY_INTERFACE": "CGI/1.1",
    }
    if remote_user:
        env["REMOTE_USER"] = remote_user
    for name, value in request.headers.items():
        if name.lower() in ("authorization", "content-type", "content-length"):
            continue
        env["HTTP_" + name.upper().replace("-", "_")] = value
    # The body goes in through a file: http-backend may answer (and exit) before it has read
    # all of a pipe, which would make writing the rest fail.
    with tempfile.TemporaryFile() as stdin:
        stdin.write(body)
        stdin.seek(0)
        proc = await asyncio.create_subprocess_exec(
            "git",
            "http-backend",
            env=env,
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, _err = await proc.communicate()
    split = out.find(b"\r\n\r\n")
    sep_len = 4
    lf = out.find(b"\n\n")
    if split < 0 or (0 <= lf < split):
        split, sep_len = lf, 2
    if split < 0:
        return Response(b"http-backend produced no headers", status_code=500)
    head, content = out[:split].decode("latin-1"), out[split + sep_len :]
    status = 200
    headers: dict[str, str] = {}
    for line in head.splitlines():
        name, _, value = line.partition(":")
        if not name:
            continue
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers[name.strip()] = value.strip()
    return Response(content, status_code=status, headers=headers)
