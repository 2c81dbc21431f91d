#!/usr/bin/env bash
# Routing on SIFT10K, GloVe-50 (cosine), MNIST and the generated drift
# scenario (before and after the drift), printed as markdown tables:
# - drift.target_recall against fixed drift.probes: the mean recall@10 and
#   single-client QPS of each target (0.90, 0.95, 0.99, with drift.probes =
#   1 as its minimum) beside a sweep of fixed probe counts, and for each
#   target the QPS of the smallest fixed probe count that reaches the same
#   measured recall;
# - the routing terms at equal probes: recall@10 and QPS of plain routing,
#   drift.lambda = 0.5 and 2, and drift.tau = the mean bucket size, at
#   probes 2, 4 and 8. drift is preloaded (janitor off), so scans count
#   hits and heat is arrivals and hits.
#
#   bench/routing.sh [SETS]      SETS: any of "sift glove mnist drift" (default all)
#
# Environment: SECONDS_PER_POINT (each of the three QPS runs, best kept;
# default 2), DRIFT_ROWS / DRIFT_DIM (the generated scenario's size per
# phase; default 20000 x 64), QUERIES (generated queries; default 200).
set -euo pipefail
cd "$(dirname "$0")/.."
make -s tools
source scripts/cluster.sh
source bench/common.sh

SETS=${1:-sift glove mnist drift}
SECS=${SECONDS_PER_POINT:-2}
N=${DRIFT_ROWS:-20000}; DIM=${DRIFT_DIM:-64}; NQ=${QUERIES:-200}
PROBES="1 2 3 4 6 8 12 16 24 32 48 64"
TARGETS="0.90 0.95 0.99"
bench_start routing 55452 "shared_preload_libraries = 'drift'" "drift.janitor = off"

# truth BASE QUERIES OP: the exact top-10 of every query (table BASE_truth).
truth() {
    B -c "SET enable_indexscan = off; CREATE TABLE $1_truth AS
          SELECT q.id, ARRAY(SELECT b.id FROM $1 b ORDER BY b.v $3 q.v LIMIT 10) AS ids FROM $2 q"
}

# point BASE QUERIES OP INDEX SETTINGS: "recall probes qps" under SETTINGS
# (comma-separated name=value pairs).
point() {
    local base=$1 queries=$2 op=$3 idx=$4 settings=$5 sets="" opts="-c enable_seqscan=off"
    local IFS=,
    for s in $settings; do sets+="SET ${s%%=*} = ${s#*=}; "; opts+=" -c $s"; done
    unset IFS
    local recall probes qps
    recall=$(B -Atc "$sets SET enable_seqscan = off; $(recall_sql "$base" "$queries" "${base}_truth" "$op" 4)")
    probes=$(B -Atc "$sets SELECT round(avg(e.buckets_probed), 1) FROM $queries q, drift_evaluate_recall('$idx', q.v, 10) e")
    query_script "$WORK/q.sql" "$base" "$queries" "$op"
    qps=$(best_qps "$WORK/q.sql" "$opts")
    echo "$recall $probes $qps"
}

# sweep LABEL BASE QUERIES OP INDEX: the fixed-probes rows, then each target
# with the ratio of its QPS to the smallest fixed count reaching its recall.
sweep() {
    local label=$1 base=$2 queries=$3 op=$4 idx=$5 r pr q
    local -a fr fq fp
    echo "# $label" >&2
    for p in $PROBES; do
        read -r r pr q < <(point "$base" "$queries" "$op" "$idx" "drift.probes=$p")
        fr+=("$r"); fq+=("$q"); fp+=("$p")
        echo "# $label probes=$p recall=$r qps=$q" >&2
        fixed_rows+=("| $label | probes = $p | $r | $pr | $q |")
        [ "$(echo "$r >= 0.999" | bc)" = 1 ] && break
    done
    for t in $TARGETS; do
        read -r r pr q < <(point "$base" "$queries" "$op" "$idx" "drift.probes=1,drift.target_recall=$t")
        local match="-" ratio="-"
        for i in "${!fr[@]}"; do
            if [ "$(echo "${fr[$i]} >= $r" | bc)" = 1 ]; then
                match="probes = ${fp[$i]} (${fr[$i]}, ${fq[$i]} QPS)"
                ratio=$(printf '%.2f' "$(echo "$q / ${fq[$i]}" | bc -l)")
                break
            fi
        done
        local band="yes"
        if [ "$(echo "$r < $t - 0.01 || $r > $t + 0.03" | bc)" = 1 ]; then band="no"; fi
        echo "# $label target=$t recall=$r probes=$pr qps=$q vs $match" >&2
        target_rows+=("| $label | $t | $r | $band | $pr | $q | $match | $ratio |")
    done
}

# terms LABEL BASE QUERIES OP INDEX: each routing term at probes 2, 4, 8.
terms() {
    local label=$1 base=$2 queries=$3 op=$4 idx=$5 r pr q tau
    tau=$(B -Atc "SELECT round(avg_bucket_size) FROM drift_index_stats('$idx')")
    for p in 2 4 8; do
        for s in "" "drift.lambda=0.5" "drift.lambda=2" "drift.tau=$tau"; do
            read -r r pr q < <(point "$base" "$queries" "$op" "$idx" "drift.probes=$p${s:+,$s}")
            echo "# $label probes=$p ${s:-plain} recall=$r qps=$q" >&2
            term_rows+=("| $label | $p | ${s:-plain} | $r | $q |")
        done
    done
}

fixed_rows=(); target_rows=(); term_rows=()
for set in $SETS; do
    case "$set" in
        sift)
            load_vectors bench sift fvecs "$DRIFT_DATA/siftsmall/siftsmall_base.fvecs"
            load_vectors bench sift_q fvecs "$DRIFT_DATA/siftsmall/siftsmall_query.fvecs"
            truth sift sift_q "<->"
            B -c "CREATE INDEX sift_idx ON sift USING drift (v)"
            sweep "SIFT10K" sift sift_q "<->" sift_idx
            terms "SIFT10K" sift sift_q "<->" sift_idx ;;
        glove)
            load_vectors bench glove fvecs "$DRIFT_DATA/glove50/glove50_base.fvecs"
            load_vectors bench glove_q fvecs "$DRIFT_DATA/glove50/glove50_query.fvecs"
            truth glove glove_q "<=>"
            B -c "CREATE INDEX glove_idx ON glove USING drift (v drift_cosine_ops)"
            sweep "GloVe-50 (cosine)" glove glove_q "<=>" glove_idx
            terms "GloVe-50 (cosine)" glove glove_q "<=>" glove_idx ;;
        mnist)
            load_vectors bench mnist fvecs "$DRIFT_DATA/mnist/mnist_t10k_base9000.fvecs"
            load_vectors bench mnist_q fvecs "$DRIFT_DATA/mnist/mnist_t10k_query1000.fvecs"
            truth mnist mnist_q "<->"
            B -c "CREATE INDEX mnist_idx ON mnist USING drift (v)"
            sweep "MNIST" mnist mnist_q "<->" mnist_idx
            terms "MNIST" mnist mnist_q "<->" mnist_idx ;;
        drift)
            # bench/drift.sh's scenario: build on distribution A, then
            # insert as many rows of B (shifted) and let maintenance run.
            gen() { echo "$DRIFT_ROOT/build/vecdata gen $1 $DIM 256 7 $2 $3"; }
            for t in dr dr_qa dr_qb dr_b; do B -c "CREATE TABLE $t (id int PRIMARY KEY, v real[])"; done
            B -c "\\copy dr FROM PROGRAM '$(gen "$N" 0 0)'"
            B -c "\\copy dr_b FROM PROGRAM '$(gen "$N" 6 "$N")'"
            B -c "\\copy dr_qa FROM PROGRAM '$(gen "$NQ" 0 $((N * 10)))'" -c "UPDATE dr_qa SET id = id - $((N * 10))"
            B -c "\\copy dr_qb FROM PROGRAM '$(gen "$NQ" 6 $((N * 20)))'" -c "UPDATE dr_qb SET id = id - $((N * 20))"
            truth dr dr_qa "<->"
            B -c "CREATE INDEX dr_idx ON dr USING drift (v)"
            sweep "drift scenario, before ($N x $DIM)" dr dr_qa "<->" dr_idx
            terms "drift scenario, before ($N x $DIM)" dr dr_qa "<->" dr_idx
            B -c "INSERT INTO dr SELECT * FROM dr_b"
            while [ "$(B -Atc "SELECT (SELECT flushed_rows + splits + merges + compactions FROM drift_maintain('dr_idx')) > 0")" = t ]; do :; done
            B -c "DROP TABLE dr_truth"
            truth dr dr_qb "<->"
            sweep "drift scenario, after (+$N shifted)" dr dr_qb "<->" dr_idx
            terms "drift scenario, after (+$N shifted)" dr dr_qb "<->" dr_idx ;;
        *) echo "unknown set $set" >&2; exit 2 ;;
    esac
done

echo
echo "### drift.target_recall, $(nproc) cores, drift.probes = 1 as the minimum"
echo
echo "| data | target | recall@10 | within [target - 0.01, target + 0.03] | buckets probed (mean) | QPS | smallest fixed probes with that recall | QPS ratio |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${target_rows[@]}"
echo
echo "| data | setting | recall@10 | buckets probed | QPS |"
echo "|---|---|---|---|---|"
printf '%s\n' "${fixed_rows[@]}"
echo
echo "### Routing terms at equal probes"
echo
echo "| data | probes | setting | recall@10 | QPS |"
echo "|---|---|---|---|---|"
printf '%s\n' "${term_rows[@]}"
