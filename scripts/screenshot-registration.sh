#!/usr/bin/env bash
# Screenshot the registration page a bot without credentials shows at GET /?token=….
#
#   scripts/screenshot-registration.sh [OUT.png] [QUERY]    e.g.  out.png 'org=acme'
#   WINDOW_SIZE=400,900 scripts/screenshot-registration.sh narrow.png
#   WITHOUT_TOKEN=1 scripts/screenshot-registration.sh locked.png    # what everyone else sees
#
# Starts this checkout's `backend-bot serve` (with `$PYTHON`, default `.venv/bin/python`) with
# no credentials on a free port, from an empty directory (so no `.env` is read), takes the
# one-time registration link it prints on its terminal from its log, and has headless
# Chromium (`apt-get install -y chromium`) take the picture. Stops the bot it started.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(realpath -m "${1:-registration.png}")"
query="${2:-}"
python="${PYTHON:-$repo/.venv/bin/python}"
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

# No credentials of any kind, whatever the calling shell has.
unset APP_ID PRIVATE_KEY PRIVATE_KEY_PATH WEBHOOK_SECRET BOT_PUBLIC_URL GHE_HOST DATABASE_URL
export HOST=127.0.0.1 PORT="$port" BOT_DATA_DIR="$work/data" LOG_LEVEL=warning
# This checkout's code, whichever checkout the virtualenv was installed from.
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"

cd "$work"
"$python" -m bot serve >"$work/bot.log" 2>&1 &
bot_pid=$!

# Prints the HTTP status of GET $1, or nothing while the server is not answering.
status_of() {
    "$python" - "$1" <<'EOF' 2>/dev/null || true
import sys, urllib.error, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=1).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
EOF
}

link=""
code=""
for _ in $(seq 1 150); do
    link="$(grep -oE 'https?://[^ ]+\?token=[^ ]+' "$work/bot.log" | head -n 1 || true)"
    if [[ -n "$link" ]]; then
        code="$(status_of "$link")"
        [[ -n "$code" ]] && break
    fi
    if ! kill -0 "$bot_pid" 2>/dev/null; then
        echo "The bot exited before serving; its log:" >&2
        cat "$work/bot.log" >&2
        exit 1
    fi
    sleep 0.2
done
if [[ -z "$code" ]]; then
    echo "The bot printed no registration link or did not answer; its log:" >&2
    cat "$work/bot.log" >&2
    exit 1
fi

if [[ -n "${WITHOUT_TOKEN:-}" ]]; then
    url="http://127.0.0.1:$port/${query:+?$query}"
    expected=403
else
    url="$link${query:+&$query}"
    expected=200
fi
code="$(status_of "$url")"
if [[ "$code" != "$expected" ]]; then
    echo "GET / answered ${code:-nothing}, not $expected" >&2
    exit 1
fi

mkdir -p "$(dirname "$out")"
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --screenshot="$out" --window-size="${WINDOW_SIZE:-1200,900}" \
    "$url" >"$work/chromium.log" 2>&1 || { cat "$work/chromium.log" >&2; exit 1; }

if [[ ! -s "$out" ]]; then
    echo "Chromium wrote no screenshot; its log:" >&2
    cat "$work/chromium.log" >&2
    exit 1
fi
echo "$out"
