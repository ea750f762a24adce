# Sourced by the scale-out tests: the one place where they start servers and
# clients, so options every invocation needs (keys, say) are added here.
#   spw_serve ARGS...     becomes `splitwire serve ARGS...` (exec: start it with
#                         `spw_serve ... &`, so $! is the server's own pid)
#   spw_classify ARGS...  becomes `splitwire classify ARGS...` (exec too: run it
#                         with & or in a subshell)
# SPW_CLI names the splitwire binary; SPW_SERVE_EXTRA and SPW_CLIENT_EXTRA
# (words split on spaces) are appended to every server or client. With
# SPW_NS set, the process runs in that network namespace (`ip netns exec`
# execs it too, so the pid stays the process's own).
# spw_keys DIR makes a server key pair in DIR and adds --key / --server-pub to
# every later server and client (protocol 2, the default).
spw_keys() {
  "$SPW_CLI" keygen "$1/server" >/dev/null || { echo "spw_keys: keygen failed" >&2; return 1; }
  SPW_SERVE_EXTRA="${SPW_SERVE_EXTRA:-} --key $1/server.key"
  SPW_CLIENT_EXTRA="${SPW_CLIENT_EXTRA:-} --server-pub $1/server.pub"
}

spw__in_ns() {
  if [ -n "${SPW_NS:-}" ]; then
    exec ip netns exec "$SPW_NS" "$@"
  fi
  exec "$@"
}

spw_serve() {
  # shellcheck disable=SC2086 # extra options are plain words
  spw__in_ns "$SPW_CLI" serve "$@" ${SPW_SERVE_EXTRA:-}
}

spw_classify() {
  # shellcheck disable=SC2086
  spw__in_ns "$SPW_CLI" classify "$@" ${SPW_CLIENT_EXTRA:-}
}
