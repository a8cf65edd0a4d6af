# Shared by the pod-bin shims (sourced, not executed).
# Inside a real pod "localhost" is the pod's own network namespace; in the simulator
# every pod shares the host's loopback, so a URL or host naming localhost/127.0.0.1
# is rewritten to the pod's own address, $RW_SIM_POD_IP.
kubesim_rewrite() {
    local a="$1" ip="${RW_SIM_POD_IP:-}"
    if [ -z "$ip" ]; then
        printf '%s' "$a"
        return
    fi
    if [[ "$a" =~ ^([A-Za-z][A-Za-z0-9+.-]*://)(localhost|127\.0\.0\.1)([:/?#].*)?$ ]]; then
        printf '%s' "${BASH_REMATCH[1]}${ip}${BASH_REMATCH[3]}"
    elif [[ "$a" =~ ^(localhost|127\.0\.0\.1)(:[0-9]+([/?#].*)?)$ ]]; then
        printf '%s' "${ip}${BASH_REMATCH[2]}"
    elif [ "$a" = localhost ] || [ "$a" = 127.0.0.1 ]; then
        printf '%s' "$ip"
    else
        printf '%s' "$a"
    fi
}

# The real tool of that name, found on PATH after this directory.
kubesim_real() {
    local name="$1" self_dir d
    self_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    local IFS=:
    for d in $PATH; do
        [ "$d" = "$self_dir" ] && continue
        [ -x "$d/$name" ] && { printf '%s' "$d/$name"; return 0; }
    done
    for d in /usr/bin /bin /usr/local/bin; do
        [ -x "$d/$name" ] && { printf '%s' "$d/$name"; return 0; }
    done
    return 1
}
