# Shared by scripts/demo and scripts/bench-e2e: a devnet (anvil + market via `stp devnet
# up`) and provider nodes as background processes, all stopped by `devnet_stop` (installed
# as the EXIT trap by `devnet_init`). Source it; don't run it.
#
# Needs: $stp_bin (the stp binary; built with `--features fault-injection` where a node is
# started with `--fault`), $dir (an empty working directory).

# Dev account keys, filled by devnet_start from what `stp devnet up` prints (anvil's public
# test mnemonic; never use them on a real network).
keys=()
devnet_pids=()
provider_pids=()

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
say() { printf '    %s\n' "$*"; }
stp() { "$stp_bin" --log-level warn "$@"; }
json_field() { python3 -c 'import json,sys; d=json.load(sys.stdin)
for k in sys.argv[1:]: d=d[k]
print(d)' "$@"; }

# Stops everything started here, newest first (nodes send their due reveals on SIGTERM,
# so the chain goes last); SIGKILL after 20 s.
devnet_stop() {
  local status=$? n pid
  for ((n = ${#devnet_pids[@]} - 1; n >= 1; n--)); do kill -TERM "${devnet_pids[$n]}" 2>/dev/null || true; done
  for ((n = ${#devnet_pids[@]} - 1; n >= 0; n--)); do
    pid=${devnet_pids[$n]}
    [ "$n" -eq 0 ] && kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  devnet_pids=()
  if [ "$status" -ne 0 ]; then echo "failed (exit $status); logs are in $dir/logs" >&2; fi
  return "$status"
}

devnet_init() {
  rm -rf "$dir"
  mkdir -p "$dir/logs" "$dir/json"
  trap devnet_stop EXIT
  trap 'exit 130' INT TERM
  unset STP_PRIVATE_KEY STP_KEYSTORE_PASSWORD RUST_LOG
  # This run's own chain index (every fresh devnet deploys at the same addresses).
  export STP_INDEX_DIR="$dir/index"
  # Mesa's software Vulkan driver wants a runtime dir; give it a private one.
  if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    export XDG_RUNTIME_DIR="$dir/xdg"
    mkdir -p -m 700 "$XDG_RUNTIME_DIR"
  fi
}

# devnet_start [stp devnet up options...]: anvil on a free port, the market deployed;
# exports ETH_RPC_URL and STP_DEPLOYMENT for every later stp command.
devnet_start() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export ETH_RPC_URL="http://127.0.0.1:$port"
  export STP_DEPLOYMENT="$dir/deployments/31337.json"
  "$stp_bin" devnet up --port "$port" --out "$dir/deployments" "$@" >"$dir/logs/devnet.log" 2>&1 &
  devnet_pids+=($!)
  for _ in $(seq 300); do grep -q 'Press Ctrl-C' "$dir/logs/devnet.log" 2>/dev/null && break; sleep 0.1; done
  [ -s "$STP_DEPLOYMENT" ] || { cat "$dir/logs/devnet.log" >&2; return 1; }
  mapfile -t keys < <(sed -n 's/^  ([0-9]*) 0x[0-9a-fA-F]\{40\}  \(0x[0-9a-f]\{64\}\)$/\1/p' "$dir/logs/devnet.log")
  [ "${#keys[@]}" -ge 10 ] || { echo "could not read the dev keys from $dir/logs/devnet.log" >&2; return 1; }
}

# provider_start I [stp provider run options...]: stakes $STAKE ETH (default 1) as dev
# account I and starts its node in the background (log: $dir/logs/providerI.log),
# bootstrapping its p2p layer from $bootstrap when set (see provider_addr).
provider_start() {
  local i=$1; shift
  local boot=()
  [ -n "${bootstrap:-}" ] && boot=(--bootstrap "$bootstrap")
  stp provider stake --amount "${STAKE:-1}" --private-key "${keys[$i]}" >/dev/null
  "$stp_bin" provider run --private-key "${keys[$i]}" --data-dir "$dir/provider$i" \
    --poll-ms 200 "${boot[@]}" "$@" >"$dir/logs/provider$i.log" 2>&1 &
  devnet_pids+=($!)
  provider_pids[$i]=$!
}

# providers_wait I...: waits until each node logged that it is up, then a second more:
# a stake counts in the draw of jobs posted after it was bonded.

providers_wait() {
  for i in "$@"; do
    for _ in $(seq 600); do grep -q "provider node up" "$dir/logs/provider$i.log" && break; sleep 0.1; done
    grep -q "provider node up" "$dir/logs/provider$i.log" ||
      { tail -20 "$dir/logs/provider$i.log" >&2; echo "provider $i did not start" >&2; return 1; }
  done
  sleep 1
}

# provider_addr I: the full libp2p address (/ip4/.../tcp/N/p2p/ID) of a started node.
provider_addr() {
  sed 's/\x1b\[[0-9;]*m//g' "$dir/logs/provider$1.log" |
    sed -n 's/.*provider node up peer_id=\([^ ]*\) addrs=\[\([^],]*\).*/\2\/p2p\/\1/p' | head -1
}
