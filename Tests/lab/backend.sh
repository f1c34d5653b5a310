# Sourced by Tests/lab/*.sh: start/stop a vhost-user backend given as a
# command template. Not executable on its own.
#
# Template contract (VIREO_BLK_BACKEND / VIREO_NET_BACKEND):
#   - run with `bash -c "exec TEMPLATE"` in a new session (setsid), stdin
#     /dev/null, stdout+stderr appended to the backend log;
#   - placeholders replaced before running: {sock} (UNIX socket path the
#     backend must create and listen on: it is the vhost-user *server*),
#     {size} (blk: disk size in bytes), {dir} (scratch dir private to the run,
#     kept across a restart), {id} (short unique word, e.g. for DPDK
#     --file-prefix);
#   - "up" = {sock} exists as a socket (polled every 0.1 s, 60 s limit); the
#     harness removes a stale {sock} before each start;
#   - stopped with SIGTERM to the whole process group (SIGKILL after 5 s);
#     --kill-restart sends SIGKILL to the group, then starts the same
#     command again.

bk_pid=
bk_cmd=
bk_log=/dev/null
bk_sock=

bk_alive() { # bk_alive PID: running (a zombie counts as dead)
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}

bk_expand() { # bk_expand TEMPLATE SOCK DIR [SIZE] -> sets bk_cmd
    local c=$1
    c=${c//\{sock\}/$2}
    c=${c//\{dir\}/$3}
    c=${c//\{size\}/${4:-0}}
    c=${c//\{id\}/$$}
    bk_cmd=$c
    bk_sock=$2
}

bk_start() { # bk_start LABEL
    rm -f "$bk_sock"
    echo "---- $(date +%T.%N | cut -c1-12) start: $bk_cmd" >>"$bk_log"
    setsid bash -c "exec $bk_cmd" </dev/null >>"$bk_log" 2>&1 &
    bk_pid=$!
    disown "$bk_pid" 2>/dev/null || true   # no "Killed" job notice on SIGKILL
    local t0=$SECONDS
    until [[ -S $bk_sock ]]; do
        if ! bk_alive "$bk_pid"; then
            sed 's/^/  backend| /' "$bk_log" | tail -n 30 >&2
            echo "$1: backend exited before creating $bk_sock" >&2
            bk_pid=; return 1
        fi
        if (( SECONDS - t0 >= 60 )); then
            echo "$1: backend did not create $bk_sock within 60s" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "$1: backend up (pid $bk_pid) on $bk_sock after $((SECONDS - t0))s" >&2
}

bk_stop() { # bk_stop SIGNAL
    [[ -n $bk_pid ]] || return 0
    echo "---- $(date +%T.%N | cut -c1-12) SIG$1" >>"$bk_log"
    kill "-$1" -- "-$bk_pid" 2>/dev/null || true
    local i
    for i in $(seq 50); do bk_alive "$bk_pid" || break; sleep 0.1; done
    kill -KILL -- "-$bk_pid" 2>/dev/null || true
    { wait "$bk_pid"; } 2>/dev/null || true
    bk_pid=
}
