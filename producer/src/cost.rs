//! The estimated cost of a fleet run, from the plan's counts. Pure arithmetic
//! with every assumption named, so the estimate can be checked by hand (the
//! same model is written out in infra/COST.md).

use serde::Serialize;

/// Prices (us-east-1, arm64 Lambda, 2026 list prices) and workload assumptions.
#[derive(Debug, Clone, Serialize)]
pub struct CostAssumptions {
    /// Lambda compute, USD per GB-second (arm64).
    pub lambda_gb_second: f64,
    /// Lambda, USD per million invocations.
    pub lambda_per_million: f64,
    /// SQS standard, USD per million requests.
    pub sqs_per_million: f64,
    /// S3 PUT/LIST, USD per thousand.
    pub s3_put_per_thousand: f64,
    /// S3 GET, USD per thousand.
    pub s3_get_per_thousand: f64,
    /// Internet egress from the source, USD per GB (GCS to AWS).
    pub egress_per_gb: f64,
    /// Virtualizer memory, GB.
    pub virtualizer_memory_gb: f64,
    /// Virtualizer wall seconds per file: its ranged GETs one after another at the source's
    /// first-byte latency, several files of a batch in parallel.
    pub virtualizer_seconds_per_file: f64,
    /// Fixed seconds per virtualizer batch (start, fragment PUT, result send).
    pub virtualizer_seconds_per_batch: f64,
    /// Committer memory, GB.
    pub committer_memory_gb: f64,
    /// Groups per commit (committer batch size).
    pub groups_per_commit: f64,
    /// Committer seconds per commit of `groups_per_commit` groups (S3 model, 50 ms per request).
    pub committer_seconds_per_commit: f64,
    /// Ranged GETs per source file (headers and coordinates, through the block cache).
    pub source_gets_per_file: f64,
    /// Bytes read per file (one 64 KiB block, measured median).
    pub bytes_per_file: f64,
    /// Icechunk objects written per group: one manifest per array (metered: 26).
    pub store_puts_per_group: f64,
    /// Icechunk objects written per commit: snapshot, transaction log, branch ref (metered: 3).
    pub store_puts_per_commit: f64,
    /// Icechunk objects read per commit: ref, snapshot, config (metered: 5).
    pub store_gets_per_commit: f64,
}

impl Default for CostAssumptions {
    fn default() -> Self {
        CostAssumptions {
            lambda_gb_second: 0.000_013_333_4,
            lambda_per_million: 0.20,
            sqs_per_million: 0.40,
            s3_put_per_thousand: 0.005,
            s3_get_per_thousand: 0.000_4,
            egress_per_gb: 0.12,
            virtualizer_memory_gb: 0.5,
            // 2 GETs at ~60 ms first-byte latency, 8 files of a batch in parallel.
            virtualizer_seconds_per_file: 2.0 * 0.060 / 8.0,
            virtualizer_seconds_per_batch: 0.5,
            committer_memory_gb: 1.0,
            groups_per_commit: 100.0,
            // BENCHMARKS.md "Commits on an S3 model": 100 groups per commit at 50 ms per
            // request ran at 33 groups/s, 3.0 s per commit.
            committer_seconds_per_commit: 3.0,
            source_gets_per_file: 2.0,
            bytes_per_file: 65_536.0,
            store_puts_per_group: 26.0,
            store_puts_per_commit: 3.0,
            store_gets_per_commit: 5.0,
        }
    }
}

/// The estimate, by line item, in USD.
#[derive(Debug, Clone, Serialize)]
pub struct CostEstimate {
    /// The assumptions used.
    pub assumptions: CostAssumptions,
    /// Lambda compute and invocations.
    pub lambda: f64,
    /// SQS requests.
    pub sqs: f64,
    /// S3 requests (fragments, store).
    pub s3: f64,
    /// Egress of the header bytes from the source.
    pub egress: f64,
    /// Sum.
    pub total: f64,
}

/// Estimates a run of `batches` groups over `files` files.
pub fn estimate(batches: usize, files: usize, a: &CostAssumptions) -> CostEstimate {
    let (b, f) = (batches as f64, files as f64);
    let commits = (b / a.groups_per_commit).ceil();
    let virtualizer_gbs = (f * a.virtualizer_seconds_per_file
        + b * a.virtualizer_seconds_per_batch)
        * a.virtualizer_memory_gb;
    let committer_gbs = commits * a.committer_seconds_per_commit * a.committer_memory_gb;
    let invocations = b + commits;
    let lambda = (virtualizer_gbs + committer_gbs) * a.lambda_gb_second
        + invocations / 1e6 * a.lambda_per_million;
    // Send (batched by 10) + receive + delete on each of two queues, and the pollers'
    // empty receives (Lambda's five pollers, 20 s long polls, ~1 h).
    let sqs_requests = 2.0 * (b / 10.0 + 2.0 * b) + 2.0 * 5.0 * 180.0;
    let sqs = sqs_requests / 1e6 * a.sqs_per_million;
    // Fragments: one PUT by the virtualizer and one GET by the committer per group. Source
    // reads are GETs too (priced as S3's; GCS's class B is the same order).
    let puts = b + b * a.store_puts_per_group + commits * a.store_puts_per_commit;
    let gets = b + commits * a.store_gets_per_commit + f * a.source_gets_per_file;
    let s3 = puts / 1e3 * a.s3_put_per_thousand + gets / 1e3 * a.s3_get_per_thousand;
    let egress = f * a.bytes_per_file / 1e9 * a.egress_per_gb;
    CostEstimate {
        assumptions: a.clone(),
        lambda,
        sqs,
        s3,
        egress,
        total: lambda + sqs + s3 + egress,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_ismip6_run_costs_a_few_cents() {
        let e = estimate(440, 10_000, &CostAssumptions::default());
        // By hand: virtualizer (10000*0.015 + 440*0.5) s * 0.5 GB = 185 GB-s, committer
        // 5 commits * 3 s * 1 GB = 15 GB-s; 200 GB-s * $1.33334e-5 + 445 invocations * $0.2e-6
        // = $0.0026667 + $0.000089 = $0.002756.
        assert!(
            (e.lambda - 0.002756).abs() < 0.000_001,
            "lambda {}",
            e.lambda
        );
        // S3: PUT 440 + 440*26 + 5*3 = 11,895 * $0.005/1000 = $0.059475;
        // GET 440 + 5*5 + 10000*2 = 20,465 * $0.0004/1000 = $0.008186.
        assert!((e.s3 - 0.067661).abs() < 0.000_001, "s3 {}", e.s3);
        // Header egress: 10000 files * 64 KiB = 0.655 GB * $0.12 ≈ $0.0786.
        assert!((e.egress - 0.0786).abs() < 0.0001, "egress {}", e.egress);
        assert!(e.total < 0.16, "total {}", e.total);
        assert!((e.total - (e.lambda + e.sqs + e.s3 + e.egress)).abs() < 1e-12);
        let double = estimate(880, 20_000, &CostAssumptions::default());
        assert!(double.total > e.total);
    }

    #[test]
    fn store_writes_grow_with_groups_and_commits() {
        let a = CostAssumptions::default();
        let one = estimate(100, 2_300, &a);
        let per_group_commits = estimate(
            100,
            2_300,
            &CostAssumptions {
                groups_per_commit: 1.0,
                ..a.clone()
            },
        );
        // One commit per group adds 99 commits' snapshot writes and reads.
        let extra = 99.0 * (3.0 * 0.005 + 5.0 * 0.0004) / 1e3;
        assert!((per_group_commits.s3 - one.s3 - extra).abs() < 1e-9);
    }
}
