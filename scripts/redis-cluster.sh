#!/usr/bin/env bash
# A local Redis Cluster for development and tests: 3 masters and 3 replicas of the installed
# redis-server on 127.0.0.1, ports BASE..BASE+5 (cluster bus ports BASE+10000..BASE+10005).
#
#   scripts/redis-cluster.sh start  [DIR]   start the cluster (or find it running); prints its seed URLs
#   scripts/redis-cluster.sh status [DIR]   cluster state and nodes; exit 0 if healthy, 3 if serving
#                                           but degraded (a node down, a master without replica),
#                                           1 otherwise
#   scripts/redis-cluster.sh stop   [DIR]   shut the nodes down and remove their state from DIR
#
# start prints one line on stdout, the seed URLs (the first three nodes), for example
#   redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103
# to run seatlock against:  APP__REDIS__MODE=cluster APP__REDIS__CLUSTER_URLS=<that line>
# Everything else goes to stderr. It returns once every node reports cluster_state:ok, knows all
# six nodes, sees 3 masters and 3 replicas with no failure flags, and every replica's link to its
# master is up. start is idempotent: a healthy cluster already running from DIR is reused, and
# nodes of it that died (kill -9) are started again from their nodes.conf and rejoin it. A port
# held by anything else (another Redis, another DIR's node, another program) is an error.
#
# A master that stops answering is failed over to its replica after the node timeout plus about
# a second of election (no persistence: keys live in memory only, and a replica has what had
# reached it).
#
# DIR defaults to target/redis-cluster in the repository; a relative DIR is taken from the current
# directory. It holds one subdirectory per node, named by its port (nodes.conf, redis.log,
# redis.pid). Several clusters can run at once with different REDIS_CLUSTER_PORT and DIR.
#
# Environment:
#   REDIS_CLUSTER_PORT             first port (default 7101: nodes on 7101-7106)
#   REDIS_CLUSTER_NODE_TIMEOUT_MS  cluster-node-timeout in ms (default 2000)
#   REDIS_CLUSTER_WAIT_SECONDS     how long start waits for a healthy cluster (default 30)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BASE=${REDIS_CLUSTER_PORT:-7101}
NODE_TIMEOUT_MS=${REDIS_CLUSTER_NODE_TIMEOUT_MS:-2000}
WAIT_SECONDS=${REDIS_CLUSTER_WAIT_SECONDS:-30}
NODES=6
REPLICAS=1

log() { echo "[redis-cluster] $*" >&2; }
die() { log "error: $*"; exit 1; }
usage() {
    echo "usage: $0 start|stop|status [DIR]" >&2
    echo "  env: REDIS_CLUSTER_PORT (default 7101), REDIS_CLUSTER_NODE_TIMEOUT_MS (default 2000)" >&2
    exit 2
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
CMD=$1
case $CMD in start | stop | status) ;; *) usage ;; esac

if ! [[ $BASE =~ ^[0-9]{1,5}$ ]] || [ $((10#$BASE)) -lt 1 ] || [ $((10#$BASE + NODES - 1 + 10000)) -gt 65535 ]; then
    die "REDIS_CLUSTER_PORT=$BASE: want a port from 1 to $((65535 - 10000 - NODES + 1)) (the cluster bus uses port+10000)"
fi
BASE=$((10#$BASE))
if ! [[ $NODE_TIMEOUT_MS =~ ^[0-9]{1,9}$ ]] || [ $((10#$NODE_TIMEOUT_MS)) -eq 0 ]; then
    die "REDIS_CLUSTER_NODE_TIMEOUT_MS=$NODE_TIMEOUT_MS: want a positive number of milliseconds"
fi
[[ $WAIT_SECONDS =~ ^[0-9]{1,6}$ ]] || die "REDIS_CLUSTER_WAIT_SECONDS=$WAIT_SECONDS: want a number of seconds"
WAIT_SECONDS=$((10#$WAIT_SECONDS))

DIR=${2:-$REPO/target/redis-cluster}
[ -n "$DIR" ] || die "DIR is empty"
case $DIR in /*) ;; *) DIR=$PWD/$DIR ;; esac
# The physical path: a node reports its working directory (CONFIG GET dir) with links resolved, and
# that is how a node of this DIR is told from anyone else's.
if [ -d "$DIR" ]; then DIR=$(cd "$DIR" && pwd -P); fi

PORTS=()
for ((i = 0; i < NODES; i++)); do PORTS+=($((BASE + i))); done

for bin in redis-server redis-cli; do
    command -v "$bin" >/dev/null 2>&1 \
        || die "$bin not found; install Redis (Debian/Ubuntu: apt-get install redis-server)"
done

# ------------------------------------------------------------------------------- helpers
# rcli PORT ARGS...: one command to the node on PORT; raw reply, \r stripped, nothing on stderr.
# Always succeeds (a node that is down gives an empty reply): callers look at the reply.
rcli() {
    local port=$1
    shift
    timeout "${RCLI_TIMEOUT:-5}" redis-cli -h 127.0.0.1 -p "$port" "$@" 2>/dev/null | tr -d '\r' || true
}

node_dir() { echo "$DIR/$1"; }

# listening PORT: something accepts TCP connections on 127.0.0.1:PORT.
listening() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# who PORT: the process listening on PORT, if ss can tell.
who() {
    local line
    line=$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1 || true)
    [[ $line =~ users:\(\((.*)\)\) ]] && echo " (${BASH_REMATCH[1]})"
    return 0
}

# node_state PORT: sets NODE_STATE to "ours" (a Redis started from DIR), "free", "redis" (another
# Redis; its directory in NODE_OTHER) or "other" (something else listens on the port or its bus
# port).
NODE_STATE=""
NODE_OTHER=""
node_state() {
    local port=$1 dir
    NODE_OTHER=""
    if [ "$(RCLI_TIMEOUT=2 rcli "$port" ping)" = PONG ]; then
        dir=$(rcli "$port" config get dir | sed -n 2p)
        if [ -n "$dir" ] && [ "$dir" = "$(node_dir "$port")" ]; then
            NODE_STATE=ours
        else
            NODE_STATE=redis
            NODE_OTHER=${dir:-unknown: CONFIG GET dir refused}
        fi
    elif listening "$port" || listening $((port + 10000)); then
        NODE_STATE=other
    else
        NODE_STATE=free
    fi
}

# live_pid PORT: the pid in PORT's pid file, if that process is alive and is this node's
# redis-server (not a recycled pid).
live_pid() {
    local file pid args
    file=$(node_dir "$1")/redis.pid
    [ -f "$file" ] || return 1
    pid=$(tr -dc '0-9' <"$file")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    args=$(ps -o args= -p "$pid" 2>/dev/null || true)
    [[ $args == *redis-server*":$1"* ]] || return 1
    echo "$pid"
}

# nodes_report: reads CLUSTER NODES on stdin. Prints one line per node (sorted by port) and a last
# line "verdict ok" or "verdict <why not>": 6 nodes, 3 masters holding slots with one replica each,
# 3 replicas of live masters, no fail/fail?/handshake/noaddr flags, every link connected.
nodes_report() {
    awk -v want_nodes="$NODES" -v want_masters=$((NODES / (REPLICAS + 1))) '
    NF >= 8 {
        n++
        id = $1; addr = $2; sub(/@.*/, "", addr)
        port = addr; sub(/.*:/, "", port)
        ids[n] = id; addrof[id] = addr; portof[id] = port + 0
        flags = $3; fl = flags; gsub(/myself,?/, "", fl)
        role = (flags ~ /master/) ? "master" : ((flags ~ /slave/) ? "replica" : "?")
        roleof[id] = role; flagsof[id] = fl; masterof[id] = $4
        slots = ""
        for (i = 9; i <= NF; i++) slots = slots (slots == "" ? "" : " ") $i
        slotsof[id] = slots
        if (flags ~ /(^|,)(fail\??|handshake|noaddr)(,|$)/) bad = bad sprintf(" %s is %s;", addr, flags)
        if ($8 != "connected") bad = bad sprintf(" %s link %s;", addr, $8)
        if (role == "master") { masters++; if (slots == "") bad = bad sprintf(" master %s has no slots;", addr) }
        if (role == "replica") replicas++
    }
    END {
        for (k = 1; k <= n; k++) {
            id = ids[k]
            if (roleof[id] == "replica") {
                m = masterof[id]
                if (!(m in roleof) || roleof[m] != "master") bad = bad sprintf(" replica %s has no live master;", addrof[id])
                else nrep[m]++
            }
        }
        # sort by port (n is 6: a simple selection sort)
        for (k = 1; k <= n; k++) order[k] = ids[k]
        for (a = 1; a <= n; a++) for (b = a + 1; b <= n; b++)
            if (portof[order[b]] < portof[order[a]]) { t = order[a]; order[a] = order[b]; order[b] = t }
        for (k = 1; k <= n; k++) {
            id = order[k]
            if (roleof[id] == "master") {
                reps = ""
                for (j = 1; j <= n; j++) if (masterof[ids[j]] == id) reps = reps (reps == "" ? "" : ",") addrof[ids[j]]
                line = sprintf("%-21s %-7s slots %-17s replicas %s", addrof[id], "master", slotsof[id] == "" ? "-" : slotsof[id], reps == "" ? "-" : reps)
                if (roleof[id] == "master" && slotsof[id] != "" && nrep[id] + 0 != 1) bad = bad sprintf(" master %s has %d replicas;", addrof[id], nrep[id])
            } else {
                line = sprintf("%-21s %-7s of %s", addrof[id], roleof[id], (masterof[id] in addrof) ? addrof[masterof[id]] : masterof[id])
            }
            if (flagsof[id] !~ /^(master|slave)$/) line = line "   [" flagsof[id] "]"
            print line
        }
        if (n != want_nodes) bad = bad sprintf(" %d nodes, want %d;", n, want_nodes)
        if (masters != want_masters || replicas != want_nodes - want_masters)
            bad = bad sprintf(" %d masters and %d replicas, want %d and %d;", masters, replicas, want_masters, want_nodes - want_masters)
        sub(/^ /, "", bad); sub(/;$/, "", bad)
        print "verdict " (bad == "" ? "ok" : bad)
    }'
}

# info_field TEXT NAME: NAME's value in INFO / CLUSTER INFO output.
info_field() { sed -n "s/^$2:\(.*\)$/\1/p" <<<"$1" | head -n 1; }

# healthy: the cluster of DIR is fully up, seen from every node. Sets WHY when it is not.
WHY=""
healthy() {
    local port info state known view verdict
    WHY=""
    for port in "${PORTS[@]}"; do
        info=$(rcli "$port" cluster info)
        if [ -z "$info" ]; then WHY="127.0.0.1:$port does not answer"; return 1; fi
        state=$(info_field "$info" cluster_state)
        known=$(info_field "$info" cluster_known_nodes)
        if [ "$state" != ok ]; then WHY="127.0.0.1:$port: cluster_state:${state:-?}"; return 1; fi
        if [ "$known" != "$NODES" ]; then WHY="127.0.0.1:$port knows ${known:-?} nodes, want $NODES"; return 1; fi
        view=$(rcli "$port" cluster nodes | nodes_report)
        verdict=$(sed -n 's/^verdict //p' <<<"$view")
        if [ "$verdict" != ok ]; then WHY="seen from 127.0.0.1:$port: $verdict"; return 1; fi
        info=$(rcli "$port" info replication)
        if [ "$(info_field "$info" role)" = slave ] && [ "$(info_field "$info" master_link_status)" != up ]; then
            WHY="replica 127.0.0.1:$port: master_link_status:$(info_field "$info" master_link_status)"
            return 1
        fi
    done
}

# wait_healthy SECONDS
wait_healthy() {
    local deadline=$((SECONDS + $1))
    until healthy; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

seed_urls() {
    local urls="" i
    for ((i = 0; i < NODES / (REPLICAS + 1); i++)); do
        urls+="${urls:+,}redis://127.0.0.1:${PORTS[i]}"
    done
    echo "$urls"
}

print_urls() {
    local urls
    urls=$(seed_urls)
    echo "$urls"
    log "use it: APP__REDIS__MODE=cluster APP__REDIS__CLUSTER_URLS=$urls"
}

# Removes what a node leaves in its directory, then the directory if nothing else is in it.
clear_node_dir() {
    local d
    d=$(node_dir "$1")
    [ -d "$d" ] || return 0
    rm -f "$d/nodes.conf" "$d/redis.log" "$d/redis.pid" "$d/dump.rdb" "$d"/temp-*.rdb
    rmdir "$d" 2>/dev/null || log "left $d: it holds files this script did not make"
}

start_node() {
    local port=$1 d
    d=$(node_dir "$port")
    mkdir -p "$d"
    # No persistence (like the compose stack's Redis); a replica may still write the dump.rdb its
    # master sent. Defaults kept on purpose: cluster-replica-validity-factor 10 and
    # cluster-require-full-coverage yes, so a replica of a killed master takes over after
    # cluster-node-timeout and the cluster reports ok again.
    redis-server --port "$port" --bind 127.0.0.1 \
        --cluster-enabled yes --cluster-config-file "$d/nodes.conf" \
        --cluster-node-timeout "$NODE_TIMEOUT_MS" \
        --save "" --appendonly no --maxmemory-policy noeviction \
        --daemonize yes --pidfile "$d/redis.pid" --logfile "$d/redis.log" --dir "$d" >/dev/null \
        || die "redis-server on port $port did not start; see $d/redis.log"
}

# wait_answering PORT: the node just started answers PING within 10 s, or its log is shown.
wait_answering() {
    local port=$1 i
    for ((i = 0; i < 100; i++)); do
        [ "$(rcli "$port" ping)" = PONG ] && return 0
        sleep 0.1
    done
    log "127.0.0.1:$port did not answer within 10 s; the end of $(node_dir "$port")/redis.log:"
    tail -n 15 "$(node_dir "$port")/redis.log" >&2 2>/dev/null || true
    return 1
}

# ------------------------------------------------------------------------------- commands
cmd_start() {
    local port state ours=() free=() taken=() fresh=1 info all_new=1
    for port in "${PORTS[@]}"; do
        node_state "$port"
        state=$NODE_STATE
        case $state in
            ours) ours+=("$port") ;;
            free) free+=("$port") ;;
            redis) taken+=("127.0.0.1:$port is taken by a Redis not started from $DIR (its dir: $NODE_OTHER)") ;;
            other)
                if listening "$port"; then
                    taken+=("127.0.0.1:$port is taken by another program$(who "$port")")
                else
                    taken+=("cluster bus port 127.0.0.1:$((port + 10000)) (for node $port) is taken by another program$(who $((port + 10000)))")
                fi ;;
        esac
    done
    if [ ${#taken[@]} -gt 0 ]; then
        for state in "${taken[@]}"; do log "$state"; done
        die "ports ${PORTS[0]}-${PORTS[NODES - 1]} are not free; stop what holds them or pick another REDIS_CLUSTER_PORT"
    fi

    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd -P)

    if [ ${#ours[@]} -eq "$NODES" ] && healthy; then
        log "already running from $DIR and healthy (ports ${PORTS[0]}-${PORTS[NODES - 1]})"
        print_urls
        return 0
    fi

    if [ ${#ours[@]} -eq 0 ]; then
        # Nothing of this DIR runs: begin afresh (without persistence there is nothing to keep).
        for port in "${PORTS[@]}"; do clear_node_dir "$port"; done
        rm -f "$DIR/create.log"
        log "starting $NODES nodes on 127.0.0.1:${PORTS[0]}-${PORTS[NODES - 1]} in $DIR (node timeout ${NODE_TIMEOUT_MS} ms)"
    else
        fresh=0
        if [ ${#free[@]} -gt 0 ]; then
            log "nodes ${ours[*]} of $DIR are running; starting ${free[*]} again from their nodes.conf"
        fi
    fi
    for port in "${free[@]}"; do start_node "$port"; done
    for port in "${free[@]}"; do wait_answering "$port" || die "node 127.0.0.1:$port failed to start"; done

    # Create the cluster only from nodes that know nobody yet and hold no slots.
    for port in "${PORTS[@]}"; do
        info=$(rcli "$port" cluster info)
        if [ "$(info_field "$info" cluster_known_nodes)" != 1 ] || [ "$(info_field "$info" cluster_slots_assigned)" != 0 ]; then
            all_new=0
        fi
    done
    if [ "$all_new" = 1 ]; then
        local addrs=()
        for port in "${PORTS[@]}"; do addrs+=("127.0.0.1:$port"); done
        log "creating the cluster: ${NODES} nodes, $REPLICAS replica per master"
        if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$REPLICAS" --cluster-yes \
            >"$DIR/create.log" 2>&1; then
            cat "$DIR/create.log" >&2
            die "redis-cli --cluster create failed (output above, also in $DIR/create.log)"
        fi
    elif [ "$fresh" = 1 ]; then
        die "the nodes started afresh but already belong to a cluster; run: $0 stop $DIR"
    fi

    log "waiting up to ${WAIT_SECONDS} s for every node to report a healthy cluster"
    if ! wait_healthy "$WAIT_SECONDS"; then
        log "not healthy after ${WAIT_SECONDS} s: $WHY"
        if [ "$fresh" = 0 ]; then
            die "the cluster of $DIR did not recover; start afresh with: $0 stop $DIR && $0 start $DIR"
        fi
        die "the cluster did not become healthy; node logs are in $DIR/<port>/redis.log"
    fi
    log "healthy: 3 masters, 3 replicas on 127.0.0.1:${PORTS[0]}-${PORTS[NODES - 1]}"
    print_urls
}

cmd_stop() {
    local port state pid i stopped=0 pids=() clear=() nopid=() alive
    # All nodes are asked at once: a node takes a second or two to exit after SHUTDOWN.
    for port in "${PORTS[@]}"; do
        pid=$(live_pid "$port" || true)
        node_state "$port"
        state=$NODE_STATE
        # A node of DIR that hangs (listens, does not answer) is still ours by its pid file.
        if [ "$state" = redis ] || { [ "$state" = other ] && [ -z "$pid" ]; }; then
            log "127.0.0.1:$port is not a node of $DIR; left alone"
            continue
        fi
        if [ "$state" = ours ]; then
            rcli "$port" shutdown nosave >/dev/null || true
            stopped=$((stopped + 1))
        elif [ -n "$pid" ]; then
            # Hung, or stopped (SIGSTOP): SIGCONT lets the SIGTERM land.
            kill -TERM "$pid" 2>/dev/null || true
            kill -CONT "$pid" 2>/dev/null || true
            stopped=$((stopped + 1))
        fi
        if [ -n "$pid" ]; then pids+=("$pid"); elif [ "$state" = ours ]; then nopid+=("$port"); fi
        clear+=("$port")
    done
    for ((i = 0; i < 100; i++)); do
        alive=()
        for pid in "${pids[@]}"; do
            if kill -0 "$pid" 2>/dev/null; then alive+=("$pid"); fi
        done
        for port in "${nopid[@]}"; do
            if [ "$(RCLI_TIMEOUT=1 rcli "$port" ping)" = PONG ]; then alive+=("$port"); fi
        done
        [ ${#alive[@]} -gt 0 ] || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid did not exit within 10 s of SHUTDOWN; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    for port in "${clear[@]}"; do clear_node_dir "$port"; done
    rm -f "$DIR/create.log"
    if [ "$stopped" -gt 0 ]; then
        log "stopped $stopped node(s) of $DIR (ports ${PORTS[0]}-${PORTS[NODES - 1]}); node state removed"
    else
        log "no node of $DIR was running (ports ${PORTS[0]}-${PORTS[NODES - 1]}); node state removed"
    fi
}

cmd_status() {
    local port state pid info seed="" up=0 rc=0 report why="" serving=1
    for port in "${PORTS[@]}"; do
        node_state "$port"
        state=$NODE_STATE
        case $state in
            ours)
                pid=$(live_pid "$port" || true)
                echo "127.0.0.1:$port  up${pid:+ (pid $pid)}"
                up=$((up + 1))
                [ -n "$seed" ] || seed=$port ;;
            free) echo "127.0.0.1:$port  down" ;;
            redis) echo "127.0.0.1:$port  another Redis (dir $NODE_OTHER), not a node of $DIR"; rc=1 ;;
            other)
                if listening "$port"; then
                    echo "127.0.0.1:$port  taken by another program$(who "$port")"
                else
                    echo "127.0.0.1:$port  down; its bus port $((port + 10000)) is taken by another program$(who $((port + 10000)))"
                fi
                rc=1 ;;
        esac
    done
    if [ -z "$seed" ]; then
        echo "no node of $DIR is running (ports ${PORTS[0]}-${PORTS[NODES - 1]})"
        return 1
    fi
    info=$(rcli "$seed" cluster info)
    echo
    echo "cluster info (127.0.0.1:$seed): cluster_state:$(info_field "$info" cluster_state)" \
        "known_nodes:$(info_field "$info" cluster_known_nodes)" \
        "slots_assigned:$(info_field "$info" cluster_slots_assigned)" \
        "slots_fail:$(info_field "$info" cluster_slots_fail)" \
        "current_epoch:$(info_field "$info" cluster_current_epoch)"
    echo "cluster nodes (127.0.0.1:$seed):"
    report=$(rcli "$seed" cluster nodes | nodes_report)
    sed '/^verdict /d; s/^/  /' <<<"$report"
    echo
    [ "$up" -eq "$NODES" ] || why="$up of $NODES nodes up"
    if healthy && [ "$rc" = 0 ] && [ -z "$why" ]; then
        echo "healthy; seed URLs: $(seed_urls)"
        return 0
    fi
    why+="${why:+; }$WHY"
    # Degraded: every node of DIR that answers still says cluster_state:ok (all slots served).
    for port in "${PORTS[@]}"; do
        node_state "$port"
        [ "$NODE_STATE" = ours ] || continue
        info=$(rcli "$port" cluster info)
        [ "$(info_field "$info" cluster_state)" = ok ] || serving=0
    done
    if [ "$rc" = 0 ] && [ "$serving" = 1 ]; then
        echo "DEGRADED (cluster_state:ok, all slots served): $why"
        return 3
    fi
    echo "NOT healthy: $why"
    return 1
}

"cmd_$CMD"
