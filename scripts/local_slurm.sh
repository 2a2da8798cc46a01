#!/usr/bin/env bash
# A two-node SLURM cluster on this machine, for the `slurm` test tier and for trying the cluster
# recipes of docs/devices.md without a cluster:
#
#   scripts/local_slurm.sh start     # install (apt, as root) if missing, start, wait until idle
#   scripts/local_slurm.sh status    # exit 0 when both nodes answer
#   scripts/local_slurm.sh stop      # stop the daemons this script started, nothing else
#   export SLURM_CONF=/tmp/rnnlab-slurm/slurm.conf   # then sbatch, srun, sinfo talk to it
#
# One munged, one slurmctld and two slurmd (`-N n1`, `-N n2`) on 127.0.0.1, each on its own port,
# with their config, keys, logs, spool and pid files in $RNNLAB_SLURM_DIR (default
# /tmp/rnnlab-slurm); the system's own munge and SLURM configuration are left alone. n1 and n2 are
# added to /etc/hosts once: Lightning takes the DDP master address from the job's node list.
# Ports: $RNNLAB_SLURM_PORT (default 26817) for slurmctld, the next two for the slurmd; above
# 25000, clear of the 15000-24999 range where Lightning puts a SLURM job's MASTER_PORT.
# On failure it prints one line and exits 1; the details are in $RNNLAB_SLURM_DIR/script.log.
set -uo pipefail

DIR="${RNNLAB_SLURM_DIR:-/tmp/rnnlab-slurm}"
PORT="${RNNLAB_SLURM_PORT:-26817}"
CONF="$DIR/slurm.conf"
LOG="$DIR/script.log"
NODES=(n1 n2)

fail() {
    echo "local_slurm.sh: $*" >&2
    exit 1
}

# pid from a pid file, if that process is alive and is the program named
alive() {
    local file="$1" program="$2" pid
    [[ -s "$file" ]] || return 1
    pid="$(tr -dc 0-9 <"$file")"
    [[ -n "$pid" && -r "/proc/$pid/comm" ]] || return 1
    [[ "$(cat "/proc/$pid/comm")" == "$program"* ]] || return 1
    echo "$pid"
}

pidfiles() {
    echo "munged $DIR/munge/munged.pid"
    echo "slurmctld $DIR/slurmctld.pid"
    for node in "${NODES[@]}"; do echo "slurmd $DIR/slurmd.$node.pid"; done
}

both_idle() {
    local states
    states="$(SLURM_CONF="$CONF" timeout 10 sinfo -h -N -o '%N %t' 2>/dev/null | sort -u)" || return 1
    [[ "$states" == $'n1 idle\nn2 idle' ]]
}

install() {
    local missing=()
    for program in munged slurmctld slurmd sbatch; do
        command -v "$program" >/dev/null || missing+=("$program")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ $EUID -eq 0 ]] || fail "${missing[*]} not installed and not root: apt-get install munge slurmctld slurmd slurm-client"
    command -v apt-get >/dev/null || fail "${missing[*]} not installed and no apt-get to install them"
    echo "installing munge slurmctld slurmd slurm-client" >>"$LOG"
    # policy-rc.d: the packages' services are not started (this script runs its own daemons)
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends munge slurmctld slurmd slurm-client \
        >>"$LOG" 2>&1 ||
        { apt-get update -q >>"$LOG" 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends munge slurmctld slurmd \
                slurm-client >>"$LOG" 2>&1; }
    local status=$?
    [[ $own_policy -eq 1 ]] && rm -f "$policy"
    [[ $status -eq 0 ]] || fail "apt-get install munge slurmctld slurmd slurm-client failed; see $LOG"
}

add_hosts() {
    local node
    for node in "${NODES[@]}"; do
        getent hosts "$node" >/dev/null && continue
        [[ -w /etc/hosts ]] || fail "$node does not resolve and /etc/hosts is not writable: add '127.0.0.1 ${NODES[*]}'"
        echo "127.0.0.1 ${NODES[*]}  # scripts/local_slurm.sh" >>/etc/hosts
        return 0
    done
}

write_conf() {
    local cpus mem user
    # not plain nproc: it honours OMP_NUM_THREADS, which the tests set to 1
    cpus="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
    # half the machine's memory per node: a job's --mem must fit one node
    mem="$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)"
    user="$(id -un)"
    mkdir -p "$DIR/state" "$DIR/munge"
    for node in "${NODES[@]}"; do mkdir -p "$DIR/spool/$node"; done
    cat >"$CONF.tmp" <<EOF
# written by scripts/local_slurm.sh: two nodes on 127.0.0.1, SLURM $(slurmctld -V 2>/dev/null | cut -d' ' -f2)
ClusterName=rnnlab
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job waits this long before it starts again (default 120 s)
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=10
StateSaveLocation=$DIR/state
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdSpoolDir=$DIR/spool/%n
SlurmdPidFile=$DIR/slurmd.%n.pid
SlurmdLogFile=$DIR/slurmd.%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# a requeued job starts within seconds of its begin time, not at the next minute
SchedulerParameters=sched_interval=2,bf_interval=2
JobRequeue=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
SlurmdTimeout=60
KillWait=10
MinJobAge=300
NodeName=n1 NodeAddr=127.0.0.1 Port=$((PORT + 1)) CPUs=$cpus RealMemory=$mem State=UNKNOWN
NodeName=n2 NodeAddr=127.0.0.1 Port=$((PORT + 2)) CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
}

start_munge() {
    alive "$DIR/munge/munged.pid" munged >/dev/null && return 0
    if [[ ! -s "$DIR/munge/munge.key" ]]; then
        (umask 077 && head -c 1024 /dev/urandom >"$DIR/munge/munge.key")
    fi
    chmod 700 "$DIR/munge"
    munged --force --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
        --seed-file="$DIR/munge/munged.seed" >>"$LOG" 2>&1 9>&- ||
        fail "munged did not start; see $DIR/munge/munged.log"
}

start_daemons() {
    if ! alive "$DIR/slurmctld.pid" slurmctld >/dev/null; then
        # -c: a fresh state, so a job left by a cluster stopped mid-job does not hold a node
        slurmctld -c -f "$CONF" >>"$LOG" 2>&1 9>&- || fail "slurmctld did not start; see $DIR/slurmctld.log"
    fi
    for node in "${NODES[@]}"; do
        alive "$DIR/slurmd.$node.pid" slurmd >/dev/null && continue
        slurmd -f "$CONF" -N "$node" >>"$LOG" 2>&1 9>&- ||
            fail "slurmd -N $node did not start; see $DIR/slurmd.$node.log"
    done
}

start() {
    mkdir -p "$DIR" || fail "cannot create $DIR"
    # (the clients ask a controller that is not there for 10 s before they give up)
    if ctld_alive && { both_idle || [[ -n "$(running_jobs)" ]]; }; then
        echo "local SLURM already running: export SLURM_CONF=$CONF"
        return 0
    fi
    install
    add_hosts
    # the config is rewritten only while no daemon of ours runs (they would not re-read it)
    local any=0 program file
    while read -r program file; do
        alive "$file" "$program" >/dev/null && any=1
    done < <(pidfiles)
    [[ $any -eq 1 && -s "$CONF" ]] || write_conf
    start_munge
    start_daemons
    local deadline=$((SECONDS + 60))
    until both_idle; do
        ((SECONDS < deadline)) || fail "n1 and n2 not idle after 60 s ($(SLURM_CONF="$CONF" timeout 10 sinfo -h -N -o '%N:%t' 2>&1 | tr '\n' ' ')); see $DIR/*.log"
        # a node that was down (a previous stop) comes back once its slurmd answers
        SLURM_CONF="$CONF" scontrol update nodename=n1,n2 state=resume >/dev/null 2>&1 || true
        sleep 1
    done
    # idle may be the state saved by the last run: a step on both nodes shows their slurmd answer
    SLURM_CONF="$CONF" timeout 60 srun --nodes=2 --job-name=local-slurm-check true >>"$LOG" 2>&1 ||
        fail "a job step on n1 and n2 did not run; see $LOG and $DIR/*.log"
    echo "local SLURM running (n1, n2 idle): export SLURM_CONF=$CONF"
}

ctld_alive() {
    alive "$DIR/slurmctld.pid" slurmctld >/dev/null
}

running_jobs() {
    SLURM_CONF="$CONF" timeout 10 squeue -h -o %i 2>/dev/null
}

status() {
    local program file pid
    while read -r program file; do
        if pid="$(alive "$file" "$program")"; then
            echo "$program ($(basename "$file" .pid)): running, pid $pid"
        else
            echo "$program ($(basename "$file" .pid)): not running"
        fi
    done < <(pidfiles)
    if ctld_alive && SLURM_CONF="$CONF" timeout 10 sinfo -h -N -o '%N %t' 2>/dev/null | grep -q .; then
        SLURM_CONF="$CONF" timeout 10 sinfo -N
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    return 1
}

stop() {
    local program file pid pids=()
    while read -r program file; do
        if pid="$(alive "$file" "$program")"; then
            kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
        fi
    done < <(pidfiles | tac) # slurmd first, munged last
    local deadline=$((SECONDS + 20))
    for pid in "${pids[@]}"; do
        while [[ -e "/proc/$pid" ]] && ((SECONDS < deadline)); do sleep 0.2; done
        [[ -e "/proc/$pid" ]] && kill -KILL "$pid" 2>/dev/null
    done
    echo "local SLURM stopped (${#pids[@]} daemons)"
}

mkdir -p "$DIR" 2>/dev/null || fail "cannot create $DIR"
case "${1:-}" in
start)
    # one start at a time: a second waits for the first, then finds the cluster running (the
    # daemons are started without fd 9, so they do not hold the lock)
    exec 9>"$DIR/start.lock" && flock 9
    start
    ;;
stop) stop ;;
status) status ;;
*) fail "usage: $0 start|stop|status" ;;
esac
