#!/usr/bin/env bash
# Subprotocol negotiation (draft-ietf-webtrans-http3-15 §3.3) through
# wtclient: the server's preference wins, no overlap with and without
# protocol_required (406), both header spellings (WT-Available-Protocols /
# WT-Protocol and quiche's WebTransport-Subprotocols-Available /
# WebTransport-Subprotocol), malformed, wrongly typed, too many and too
# long offers (ignored as a whole), several field lines (one List).
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon \
    "[route /chat]" "handler = echo" "protocols = chat.v2, chat.v1" \
    "[route /strict]" "handler = echo" "protocols = chat.v2, chat.v1" \
    "protocol_required = yes"

printf 'hello, protocols' >"$TMP/msg"

# chose PATH WANT [OPTIONS]: the session opens, echoes, and wtclient
# reports WANT as the server's choice ("(none)" for none).
chose() {
    local path=$1 want=$2
    shift 2
    client "$path" --send "$TMP/msg" --verify "$@" || return 1
    client_err_has "wtclient: protocol: $want"
}
# refused PATH [OPTIONS]: the CONNECT is answered 406.
refused() {
    local path=$1
    shift
    client_exit 4 "$path" "$@" && client_err_has "HTTP 406"
}
# opened_with PROTO: the latest session open line names PROTO (or none).
opened_with() {
    local line
    line=$(grep 'session .*: opened /' "$TMP/daemon.log" | tail -n 1)
    case "$PROTO:$line" in
    none:*", protocol "*) echo "a protocol was logged: $line"; return 1 ;;
    none:*) return 0 ;;
    *:*"handler echo, protocol $PROTO)"*) return 0 ;;
    esac
    echo "open line lacks protocol $PROTO: $line"
    return 1
}

# --- the matrix ---
check server-preference-wins chose /chat chat.v2 --protocol chat.v1 --protocol chat.v2
check preference-logged eval 'PROTO=chat.v2 opened_with'
check one-in-common chose /chat chat.v1 --protocol x.v9 --protocol chat.v1
check one-in-common-logged eval 'PROTO=chat.v1 opened_with'
check draft15-offer chose /strict chat.v2 --draft 15 --protocol chat.v2
check no-overlap-open chose /chat "(none)" --protocol x.v9 --protocol y
check no-overlap-logged eval 'PROTO=none opened_with'
check no-overlap-required refused /strict --protocol x.v9
check required-no-offer refused /strict
check required-log log_has "refused with 406: no subprotocol of the route offered"
check route-without-protocols chose /echo "(none)" --protocol chat.v2
check case-sensitive refused /strict --protocol Chat.v2

# --- quiche's spelling: Tokens, answered in WebTransport-Subprotocol ---
check quiche-spelling chose /strict chat.v2 --protocol-header quiche \
    --protocol chat.v1 --protocol chat.v2
check quiche-no-overlap refused /strict --protocol-header quiche --protocol x
quiche_answer() {
    client /chat --protocol-header quiche --protocol chat.v1 -v || return 1
    grep -q 'webtransport-subprotocol: chat.v1' "$TMP/client.err" && return 0
    echo "no token answer in: $(grep -i subprotocol "$TMP/client.err" | tail -n 1)"
    return 1
}
check quiche-answer-is-token quiche_answer
wt_answer() {
    client /chat --protocol chat.v1 -v || return 1
    grep -q 'wt-protocol: "chat.v1"' "$TMP/client.err" && return 0
    echo "no string answer in: $(grep -i wt-protocol "$TMP/client.err" | tail -n 1)"
    return 1
}
check wt-answer-is-string wt_answer

# --- hostile offers: the field is ignored (as the draft says), i.e. no offer ---
check token-in-wt-field refused /strict --header 'wt-available-protocols: chat.v2'
check token-in-wt-field-why log_has "WT-Available-Protocols ignored: a member is not of the field's type"
check string-in-quiche-field refused /strict \
    --header 'webtransport-subprotocols-available: "chat.v2"'
check unterminated refused /strict --header 'wt-available-protocols: "chat.v2'
check unterminated-why log_has "WT-Available-Protocols ignored: malformed"
check trailing-comma refused /strict --header 'wt-available-protocols: "chat.v2",'
check inner-list refused /strict --header 'wt-available-protocols: ("chat.v2")'
check bad-param refused /strict --header 'wt-available-protocols: "chat.v2";X=1'
check ignored-opens-without chose /chat "(none)" --protocol x \
    --header 'wt-available-protocols: "chat.v2", chat.v1' --protocol-header quiche
params_ignored() {
    client /strict --header 'wt-available-protocols: "x";q=1, "chat.v1";q=0.5' || return 1
    PROTO=chat.v1 opened_with
}
check params-ignored params_ignored
# a malformed drafts' field, a good quiche one: the quiche one counts
fallback() {
    client /strict --header 'wt-available-protocols: "chat.v2' \
        --header 'webtransport-subprotocols-available: chat.v1' || return 1
    PROTO=chat.v1 opened_with
}
check fallback-to-quiche-field fallback
# two field lines are one List
two_lines() {
    client /strict --header 'wt-available-protocols: "x"' \
        --header 'wt-available-protocols: "chat.v1"' || return 1
    PROTO=chat.v1 opened_with
}
check two-field-lines two_lines
empty() { client_exit 0 /chat --header 'wt-available-protocols: ' && PROTO=none opened_with; }
check empty-offer empty

# --- limits: 32 members of at most 128 bytes are read; more, and the field is ignored ---
many() { # many N: N offers, chat.v1 last
    local args=() i
    for i in $(seq 2 "$1"); do args+=(--protocol "p$i"); done
    args+=(--protocol chat.v1)
    printf '%s\n' "${args[@]}"
}
mapfile -t M32 < <(many 32)
mapfile -t M33 < <(many 33)
check 32-offers chose /strict chat.v1 "${M32[@]}"
check 33-offers refused /strict "${M33[@]}"
check 33-offers-why log_has "ignored: more members or bytes than read"
L128=$(printf 'x%.0s' $(seq 1 128))
L129=$(printf 'x%.0s' $(seq 1 129))
check 128-byte-member chose /strict chat.v1 --protocol "$L128" --protocol chat.v1
check 129-byte-member refused /strict --protocol "$L129" --protocol chat.v1
check 16KiB-offer refused /strict --header "wt-available-protocols: \"$(head -c 16000 /dev/zero | tr '\0' 'a')\""

# a well-behaved client on the same daemon all along
check echo-still-served client /echo --send "$TMP/msg" --verify
it_finish
