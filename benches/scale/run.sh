#!/usr/bin/env bash
# The scale benchmark of issues 6 and 12: cutover (and Terraform, side by
# side) for N environments and N/2 routers on one real HAProxy, made by three
# blocks with `for_each` over one map of N/2 services (generate.py).
#
#   benches/scale/run.sh                 # N = 1000 3000 10000, 3 runs per phase
#   NS="1000 3000" RUNS=5 benches/scale/run.sh
#   TF_NS="1000 3000" ...                # Terraform sizes ("" to skip Terraform)
#   PARALLELISM=64 ...                   # passed to cutover (default: its own)
#   SERVICES_FORMAT=json ...             # the services map as a JSON file, decoded
#   CALLGRIND=1 / PERF=1 / STRACE=0 ...  # instruction counts / a profile / no strace run
#   HAPROXY_PERF=1 ...                   # a profile of HAProxy during one cut-over apply
#   CUTOVER=/path/to/cutover ...         # measure another build
#   BASELINE=/path/to/old/cutover ...    # and an older build in the same run
#                                        # (tool "baseline"), interleaved round
#                                        # by round: each round runs every phase
#                                        # once with the old build, then once
#                                        # with the new one
#
# Each run is timed by measure.py: /usr/bin/time for peak RSS; wall and CPU
# time in microseconds (a monotonic clock, wait4's rusage).
# docs/scale.md explains the phases and the checks made after each run.
# Everything listens on 127.0.0.1; the health server and HAProxy are started
# here and stopped by PID on exit. Results: $WORK/results.tsv and a markdown
# table on stdout (benches/scale/report.py).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-/tmp/cutover-scale.$$}
NS=${NS:-"1000 3000 10000"}
TF_NS=${TF_NS-"1000"}
RUNS=${RUNS:-3}
APPLY_RUNS=${APPLY_RUNS:-3}
HEALTH_PORT=${HEALTH_PORT:-18611}
HAPROXY_PORT=${HAPROXY_PORT:-18612}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
STRACE=${STRACE:-1}          # 1: one extra apply under strace to count state bytes
PERF=${PERF:-0}              # 1: one extra cut-over apply per N under `perf record`
HAPROXY_PERF=${HAPROXY_PERF:-0}  # 1: one extra cut-over apply per N, HAProxy under `perf record`
CALLGRIND=${CALLGRIND:-0}    # 1: one extra cut-over apply per N under callgrind (instruction counts)
SERVICES_FORMAT=${SERVICES_FORMAT:-hcl}  # json: the services map as a JSON file (generate.py)

mkdir -p "$WORK"
echo "machine: $(nproc) CPUs; load at the start:$(uptime | sed 's/.*load/ load/')" | tee "$WORK/load.txt"
RESULTS=$WORK/results.tsv
printf 'tool\tn\tphase\trun\twall_s\trss_kib\tcpu_s\n' >"$RESULTS"

if [ -z "${CUTOVER:-}" ]; then
    # No AWS SDK: the benchmark drives HAProxy only.
    (cd "$ROOT" && cargo build --release --no-default-features --bin cutover --quiet)
fi
CUTOVER=${CUTOVER:-$TARGET/release/cutover}   # CUTOVER=path: measure another build
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# --- the live world: one health server, one HAProxy ---------------------------
python3 "$HERE/health_server.py" "$HEALTH_PORT" &
PIDS+=($!)
HEALTH_PID=$!
SOCK=$WORK/admin.sock
MAP=$WORK/live.map
: >"$MAP"
cat >"$WORK/haproxy.cfg" <<CFG
global
    noreuseport
    stats socket $SOCK mode 600 level admin
    stats timeout 30s
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend public
    bind 127.0.0.1:$HAPROXY_PORT
    use_backend %[req.hdr(x-router),map($MAP,no_live)]
backend blue
    server s1 127.0.0.1:$HEALTH_PORT
backend green
    server s1 127.0.0.1:$HEALTH_PORT
backend no_live
    http-request return status 503
CFG
haproxy -f "$WORK/haproxy.cfg" -db &
PIDS+=($!)
HAPROXY_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && curl -fsS "http://127.0.0.1:$HEALTH_PORT/reset" >/dev/null 2>&1 && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "HAProxy did not start" >&2; exit 1; }

api() { python3 "$HERE/runtime_api.py" "$SOCK" "$@"; }
reset_counts() { curl -fsS "http://127.0.0.1:$HEALTH_PORT/reset" >/dev/null; }

# measure TOOL N PHASE RUN CMD...: one whole-process run, wall and peak RSS.
# cpu_of PID: user + system CPU seconds of a process so far (/proc/PID/stat).
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }

# measure TOOL N PHASE RUN CMD...: one whole-process run, wall and peak RSS;
# and the CPU time HAProxy and the health server spent meanwhile (rows
# `haproxy-cpu` and `health-cpu`, in the cpu column): the real router and
# the health checks' server work for the run too, on the same 2 cores.
measure() {
    local tool=$1 n=$2 phase=$3 run=$4; shift 4
    local out=$WORK/time.out rc=0
    expand_co "$@"
    local hap0 hs0; hap0=$(cpu_of "$HAPROXY_PID"); hs0=$(cpu_of "$HEALTH_PID")
    python3 "$HERE/measure.py" "$out" "$WORK/last.stdout" "$WORK/last.stderr" -- "${CMD[@]}" || rc=$?
    local hap hs
    hap=$(awk -v a="$hap0" -v b="$(cpu_of "$HAPROXY_PID")" 'BEGIN { printf "%.2f", b - a }')
    hs=$(awk -v a="$hs0" -v b="$(cpu_of "$HEALTH_PID")" 'BEGIN { printf "%.2f", b - a }')
    # plan --detailed-exitcode: 2 means "changes present", not a failure.
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then
        echo "FAILED ($rc): $*" >&2; tail -20 "$WORK/last.stderr" >&2; exit 1
    fi
    read -r wall rss cpu <"$out"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$n" "$phase" "$run" "$wall" "$rss" "$cpu" >>"$RESULTS"
    if [ "$tool" != terraform ]; then
        local suffix=; [ "$tool" = cutover ] || suffix=-$tool
        printf 'haproxy-cpu%s\t%s\t%s\t%s\t0\t0\t%s\n' "$suffix" "$n" "$phase" "$run" "$hap" >>"$RESULTS"
        printf 'health-cpu%s\t%s\t%s\t%s\t0\t0\t%s\n' "$suffix" "$n" "$phase" "$run" "$hs" >>"$RESULTS"
    fi
    printf '  %-9s N=%-5s %-16s run %s: %7ss %7s KiB %7ss CPU (HAProxy %ss, health server %ss)\n' \
        "$tool" "$n" "$phase" "$run" "$wall" "$rss" "$cpu" "$hap" "$hs"
}

gen() { python3 "$HERE/generate.py" cutover "$DIR" "$N" --health-port "$HEALTH_PORT" --socket "$SOCK" --map "$MAP" --services "$SERVICES_FORMAT" "$@"; }
BIN=$CUTOVER    # the cutover binary being measured (bench_cutover sets it)
co() { "$BIN" -C "$DIR" "$@"; }
# Commands given as `co ARGS` run the cutover binary on $DIR (with
# --parallelism for plan/apply when PARALLELISM is set).
expand_co() {
    CMD=("$@")
    if [ "$1" = co ]; then
        CMD=("$BIN" -C "$DIR" "${@:2}")
        case "$2" in plan | apply) [ -n "${PARALLELISM:-}" ] && CMD+=(--parallelism "$PARALLELISM") ;; esac
    fi
    return 0
}

# state_bytes N PHASE CMD...: bytes written to files in the config directory
# (the state and its temporary files) by one run, counted by strace; and its
# fsyncs, renames and connections to HAProxy's runtime API and the health server.
state_bytes() {
    local n=$1 phase=$2; shift 2
    expand_co "$@"
    local trace=$WORK/strace-$n-$phase.out
    strace -f -qq -y -e trace=write,pwrite64,writev,fsync,fdatasync,rename,renameat,renameat2,connect -e signal=none \
        -o "$trace" "${CMD[@]}" >/dev/null 2>&1
    local bytes
    bytes=$(grep -E '^[0-9]+ +(write|pwrite64|writev)\(' "$trace" | grep -F "<$DIR/" | grep -v 'cutover.lock' \
        | sed -n 's/.*= \([0-9]\+\)$/\1/p' | awk '{s+=$1} END {print s+0}')
    echo "  syscalls of that run: $(grep -cE '^[0-9]+ +f(data)?sync\(' "$trace") fsync/fdatasync," \
        "$(grep -cE '^[0-9]+ +rename' "$trace") renames, of which $(grep -E '^[0-9]+ +rename' "$trace" | grep -cF "$MAP") map-file rewrites;" \
        "$(grep -E '^[0-9]+ +connect\(' "$trace" | grep -cF "$SOCK") runtime-API connections," \
        "$(grep -E '^[0-9]+ +connect\(' "$trace" | grep -cF "htons($HEALTH_PORT)") health-check connections"
    local final; final=$(stat -c %s "$DIR/cutover.state.json")
    printf 'state-bytes\t%s\t%s\t0\t%s\t%s\t0\n' "$n" "$phase" "$bytes" "$final" >>"$RESULTS"
    echo "  state bytes written, N=$n $phase: $bytes (final state file: $final bytes)"
}

# profile N PHASE CMD...: one run under `perf record` (CPU samples with call
# graphs, plus the scheduler's switches so that time spent waiting shows too);
# reports in $WORK/perf-N-PHASE.txt. Build with debug line tables for names:
#   CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release
profile() {
    local n=$1 phase=$2; shift 2
    expand_co "$@"
    cp "$WORK/state-blue-cutover-$n.json" "$DIR/cutover.state.json"; api reset "$MAP" "$n" blue
    local data=$WORK/perf-$n-$phase.data
    perf record -q -F 2999 -g --call-graph dwarf,32768 -o "$data" -- "${CMD[@]}" >/dev/null 2>&1
    perf report -q -i "$data" --stdio --no-children --percent-limit 0.5 -g none \
        --sort dso,symbol >"$WORK/perf-$n-$phase.txt" 2>/dev/null
    perf report -q -i "$data" --stdio --children --percent-limit 2 -g caller,0.5,callee,function,percent \
        >"$WORK/perf-$n-$phase.tree.txt" 2>/dev/null
    echo "  profile, N=$n $phase: $WORK/perf-$n-$phase.txt (flat) and .tree.txt (call tree)"
}

# profile_haproxy N PHASE CMD...: one run with HAProxy (not cutover) under
# `perf record -p`, stopped by its PID once the run ends; flat report by
# symbol in $WORK/perf-haproxy-N-PHASE.txt (Debian's haproxy has symbols).
profile_haproxy() {
    local n=$1 phase=$2; shift 2
    expand_co "$@"
    cp "$WORK/state-blue-cutover-$n.json" "$DIR/cutover.state.json"; api reset "$MAP" "$n" blue
    local data=$WORK/perf-haproxy-$n-$phase.data
    perf record -q -F 2999 -g -p "$HAPROXY_PID" -o "$data" >/dev/null 2>&1 &
    local perf_pid=$!
    # perf writes its header once it is attached to every thread.
    for _ in $(seq 200); do [ -s "$data" ] && break; sleep 0.05; done
    "${CMD[@]}" >/dev/null 2>&1
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    perf report -q -i "$data" --stdio --no-children --percent-limit 0.5 -g none \
        --sort symbol >"$WORK/perf-haproxy-$n-$phase.txt" 2>/dev/null
    echo "  HAProxy's profile, N=$n $phase: $WORK/perf-haproxy-$n-$phase.txt"
}

# count_instructions N PHASE CMD...: one run under callgrind, which counts
# instructions rather than seconds, so the counts at two sizes compare
# exactly whatever else the machine is doing (but nothing outside the
# process: not the kernel, not the routers). Reports in
# $WORK/callgrind-N-PHASE.txt (inclusive, by function).
count_instructions() {
    local n=$1 phase=$2; shift 2
    expand_co "$@"
    # Called by bench_cutover: $tool is the build measured.
    local data=$WORK/callgrind-$tool-$n-$phase.out
    valgrind -q --tool=callgrind --callgrind-out-file="$data" "${CMD[@]}" >"$WORK/callgrind.stdout" 2>&1 || {
        echo "FAILED under callgrind: ${CMD[*]}" >&2; tail -20 "$WORK/callgrind.stdout" >&2; exit 1
    }
    callgrind_annotate --inclusive=yes "$data" >"$WORK/callgrind-$tool-$n-$phase.txt" 2>/dev/null || true
    local row=instructions; [ "$tool" = cutover ] || row=instructions-$tool
    printf '%s\t%s\t%s\t0\t%s\t0\t0\n' "$row" "$n" "$phase" \
        "$(sed -n 's/^events: Ir$//; s/^summary: \([0-9]*\).*/\1/p' "$data")" >>"$RESULTS"
    echo "  instructions, $tool N=$n $phase: $(sed -n 's/^summary: //p' "$data") ($WORK/callgrind-$tool-$n-$phase.txt)"
}

# runs COUNT: the run numbers to make of a phase: 1..COUNT, or only this
# round's ($ROUND, when builds are interleaved round by round).
runs() {
    if [ -z "${ROUND:-}" ]; then seq "$1"; elif [ "$ROUND" -le "$1" ]; then echo "$ROUND"; fi
}
# first_round: whether the one-off runs (strace, perf, callgrind) are made now.
first_round() { [ -z "${ROUND:-}" ] || [ "$ROUND" = 1 ]; }

# bench_cutover TOOL BINARY: every phase at size $N with BINARY, recorded as TOOL.
# The extra runs (strace, perf, callgrind) are for the build under test only.
bench_cutover() {
    local tool=$1 r rc f; BIN=$2
    DIR=$WORK/$tool-$N
    rm -rf "$DIR"; mkdir -p "$DIR"
    echo "== $tool ($BIN), N=$N ($((N / 2)) routers)"
    gen --live blue
    for r in $(runs "$RUNS"); do measure "$tool" "$N" validate "$r" co validate; done
    [ "$CALLGRIND" = 1 ] && first_round && count_instructions "$N" validate co validate

    # Plan from nothing: no state, an empty map.
    api clear "$MAP"
    for r in $(runs "$RUNS"); do measure "$tool" "$N" plan-fresh "$r" co plan --detailed-exitcode; done

    # Apply from nothing: every router's first cut-over (none -> blue), each
    # behind blue's health gate.
    for r in $(runs "$APPLY_RUNS"); do
        rm -f "$DIR/cutover.state.json"; api clear "$MAP"; reset_counts
        measure "$tool" "$N" apply-fresh "$r" co apply --auto-approve
        api expect "$MAP" "$N" blue
        python3 "$HERE/check_health.py" "$HEALTH_PORT" "$N" blue=2 green=1
    done
    if [ "$tool" = cutover ] && [ "$STRACE" = 1 ] && [ "$N" -ge 1000 ] && first_round; then
        rm -f "$DIR/cutover.state.json"; api clear "$MAP"
        state_bytes "$N" apply-fresh co apply --auto-approve
        api expect "$MAP" "$N" blue
    fi
    cp "$DIR/cutover.state.json" "$WORK/state-blue-$tool-$N.json"

    reset_counts
    local plans=0
    for r in $(runs "$RUNS"); do measure "$tool" "$N" plan-noop "$r" co plan --detailed-exitcode; plans=$((plans + 1)); done
    python3 "$HERE/check_health.py" "$HEALTH_PORT" "$N" blue="$plans" green="$plans"
    co plan --detailed-exitcode >/dev/null || { echo "no-op plan is not empty" >&2; exit 1; }
    [ "$CALLGRIND" = 1 ] && first_round && count_instructions "$N" plan-noop co plan --detailed-exitcode

    gen --live blue --green-release 1.1.0
    for r in $(runs "$RUNS"); do measure "$tool" "$N" plan-release "$r" co plan --detailed-exitcode; done

    # Every router cuts over blue -> green, each behind green's health gate.
    gen --live green --green-release 1.1.0
    # The size of that plan saved (`plan --out`) and as JSON (`plan --json`):
    # the files people keep and review must grow with N, not N².
    cp "$WORK/state-blue-$tool-$N.json" "$DIR/cutover.state.json"; api reset "$MAP" "$N" blue
    rc=0; co plan --out "$WORK/$tool-$N.plan" --detailed-exitcode >/dev/null || rc=$?
    [ "$rc" = 2 ] || { echo "plan --out exited $rc, not 2 (changes)" >&2; exit 1; }
    rc=0; co plan --json --detailed-exitcode >"$WORK/$tool-$N.plan.json" || rc=$?
    [ "$rc" = 2 ] || { echo "plan --json exited $rc, not 2 (changes)" >&2; exit 1; }
    for f in plan plan.json; do
        [ "$tool" = cutover ] && printf 'file-bytes\t%s\t%s\t0\t%s\t0\t0\n' "$N" "$f" "$(stat -c %s "$WORK/$tool-$N.$f")" >>"$RESULTS"
    done
    echo "  plan of $((N / 2)) cut-overs: saved $(stat -c %s "$WORK/$tool-$N.plan") bytes, JSON $(stat -c %s "$WORK/$tool-$N.plan.json") bytes"
    for r in $(runs "$APPLY_RUNS"); do
        cp "$WORK/state-blue-$tool-$N.json" "$DIR/cutover.state.json"; api reset "$MAP" "$N" blue; reset_counts
        measure "$tool" "$N" apply-cutover "$r" co apply --auto-approve
        api expect "$MAP" "$N" green
        python3 "$HERE/check_health.py" "$HEALTH_PORT" "$N" blue=1 green=2
    done
    if [ "$tool" = cutover ] && [ "$STRACE" = 1 ] && [ "$N" -ge 1000 ] && first_round; then
        cp "$WORK/state-blue-$tool-$N.json" "$DIR/cutover.state.json"; api reset "$MAP" "$N" blue
        state_bytes "$N" apply-cutover co apply --auto-approve
        api expect "$MAP" "$N" green
    fi
    if [ "$tool" = cutover ] && [ "$PERF" = 1 ] && first_round; then
        profile "$N" apply-cutover co apply --auto-approve
        api expect "$MAP" "$N" green
    fi
    if [ "$tool" = cutover ] && [ "$HAPROXY_PERF" = 1 ] && first_round; then
        profile_haproxy "$N" apply-cutover co apply --auto-approve
        api expect "$MAP" "$N" green
    fi
    if [ "$CALLGRIND" = 1 ] && first_round; then
        cp "$WORK/state-blue-$tool-$N.json" "$DIR/cutover.state.json"; api reset "$MAP" "$N" blue
        count_instructions "$N" apply-cutover co apply --auto-approve
        api expect "$MAP" "$N" green
    fi
}

for N in $NS; do
    if [ -z "${BASELINE:-}" ]; then
        bench_cutover cutover "$CUTOVER"
        continue
    fi
    # Round by round, the old build then the new, so that both meet the
    # machine as it is at the same time (run after run of one build, then of
    # the other, measured whatever else the machine did in between: a
    # quarter's difference in wall time that interleaved runs did not show).
    for round in $(seq "$(( RUNS > APPLY_RUNS ? RUNS : APPLY_RUNS ))"); do
        ROUND=$round bench_cutover baseline "$BASELINE"
        ROUND=$round bench_cutover cutover "$CUTOVER"
    done
done

# --- Terraform, same shapes, terraform_data only, same machine, same run -------
if [ -n "$TF_NS" ] && command -v terraform >/dev/null; then
    export TF_IN_AUTOMATION=1 TF_CLI_ARGS="-no-color" CHECKPOINT_DISABLE=1
    for N in $TF_NS; do
        DIR=$WORK/terraform-$N
        rm -rf "$DIR"; mkdir -p "$DIR"
        echo "== terraform, N=$N ($((N / 2)) routers)"
        python3 "$HERE/generate.py" terraform "$DIR" "$N"
        (cd "$DIR" && terraform init -input=false >/dev/null)
        for r in $(seq "$RUNS"); do measure terraform "$N" validate "$r" terraform -chdir="$DIR" validate; done
        for r in $(seq "$RUNS"); do measure terraform "$N" plan-fresh "$r" terraform -chdir="$DIR" plan -input=false -lock=false -detailed-exitcode; done
        TF_APPLY_RUNS=$APPLY_RUNS; [ "$N" -ge 1000 ] && TF_APPLY_RUNS=1
        for r in $(seq "$TF_APPLY_RUNS"); do
            rm -f "$DIR/terraform.tfstate" "$DIR/terraform.tfstate.backup"
            measure terraform "$N" apply-fresh "$r" terraform -chdir="$DIR" apply -input=false -auto-approve
        done
        for r in $(seq "$RUNS"); do measure terraform "$N" plan-noop "$r" terraform -chdir="$DIR" plan -input=false -lock=false -detailed-exitcode; done
        python3 "$HERE/generate.py" terraform "$DIR" "$N" --green-release 1.1.0
        for r in $(seq "$RUNS"); do measure terraform "$N" plan-release "$r" terraform -chdir="$DIR" plan -input=false -lock=false -detailed-exitcode; done
        python3 "$HERE/generate.py" terraform "$DIR" "$N" --live green --green-release 1.1.0
        cp "$DIR/terraform.tfstate" "$DIR/blue.tfstate"
        for r in $(seq "$TF_APPLY_RUNS"); do
            cp "$DIR/blue.tfstate" "$DIR/terraform.tfstate"
            measure terraform "$N" apply-cutover "$r" terraform -chdir="$DIR" apply -input=false -auto-approve
        done
    done
fi

python3 "$HERE/report.py" "$RESULTS"
echo "machine: load at the end:$(uptime | sed 's/.*load/ load/')" | tee -a "$WORK/load.txt"
echo "raw results: $RESULTS"
