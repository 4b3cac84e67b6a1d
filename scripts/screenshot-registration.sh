#!/usr/bin/env bash
# Screenshot the registration page a bot without credentials shows at GET /.
#
#   scripts/screenshot-registration.sh [OUT.png] [QUERY]    e.g.  out.png 'org=acme'
#   WINDOW_SIZE=1200,1300 scripts/screenshot-registration.sh tall.png
#
# Starts the bot with no credentials on a free port, from an empty directory (so no `.env`
# is read), with `backend-bot serve` when the CLI is there and answers 200 at /, otherwise the registration
# routes alone under uvicorn; then headless Chromium (`apt-get install -y chromium`) takes
# the picture. Stops the bot it started.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(realpath -m "${1:-registration.png}")"
query="${2:-}"
python="$repo/.venv/bin/python"
chromium="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [[ -z "$chromium" ]]; then
    echo "No Chromium found: apt-get update && apt-get install -y chromium" >&2
    exit 1
fi

work="$(mktemp -d)"
profile="$(mktemp -d)"
bot_pid=""
cleanup() {
    if [[ -n "$bot_pid" ]]; then
        kill "$bot_pid" 2>/dev/null || true
        wait "$bot_pid" 2>/dev/null || true
    fi
    rm -rf "$work" "$profile"
}
trap cleanup EXIT

port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port/${query:+?$query}"

# No credentials of any kind, whatever the calling shell has.
unset APP_ID PRIVATE_KEY PRIVATE_KEY_PATH WEBHOOK_SECRET BOT_PUBLIC_URL GHE_HOST DATABASE_URL
export HOST=127.0.0.1 PORT="$port" BOT_DATA_DIR="$work/data" LOG_LEVEL=warning

cd "$work"
start_bot() {
    if [[ "$1" == serve ]]; then
        "$repo/.venv/bin/backend-bot" serve >"$work/bot.log" 2>&1 &
    else
        "$python" - >"$work/bot.log" 2>&1 <<'EOF' &
import uvicorn
from starlette.applications import Starlette

from bot.registration import registration_routes
from bot.settings import load_settings

settings = load_settings()
uvicorn.run(Starlette(routes=registration_routes(settings)), host=settings.host, port=settings.port,
            log_level="warning")
EOF
    fi
    bot_pid=$!
}

stop_bot() {
    kill "$bot_pid" 2>/dev/null || true
    wait "$bot_pid" 2>/dev/null || true
    bot_pid=""
}

# Prints the HTTP status of GET $url, or nothing while the server is not answering.
status_of() {
    "$python" - "$url" <<'EOF' 2>/dev/null || true
import sys, urllib.error, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=1).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
EOF
}

wait_for_page() {
    for _ in $(seq 1 150); do
        code="$(status_of)"
        if [[ -n "$code" ]]; then
            echo "$code"
            return
        fi
        if ! kill -0 "$bot_pid" 2>/dev/null; then
            echo "The bot exited before serving; its log:" >&2
            cat "$work/bot.log" >&2
            return 1
        fi
        sleep 0.2
    done
    echo "The bot did not answer at $url" >&2
    return 1
}

code=""
if [[ -x "$repo/.venv/bin/backend-bot" ]] && "$python" -c 'import bot.cli' 2>/dev/null; then
    start_bot serve
    code="$(wait_for_page || true)"
    if [[ "$code" != 200 ]]; then
        echo "backend-bot serve answered ${code:-nothing} at /; using the registration routes alone" >&2
        stop_bot
        code=""
    fi
fi
if [[ -z "$code" ]]; then
    start_bot routes
    code="$(wait_for_page)"
fi
if [[ "$code" != 200 ]]; then
    echo "GET $url answered $code" >&2
    exit 1
fi

"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --screenshot="$out" --window-size="${WINDOW_SIZE:-1200,900}" \
    "$url" >"$work/chromium.log" 2>&1 || { cat "$work/chromium.log" >&2; exit 1; }

test -s "$out"
echo "$out"
