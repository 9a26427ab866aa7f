//! `campaign bench` end to end at tiny sizes: every phase runs (the local engine on a real
//! SQLite file and in memory, `campaign serve` over loopback for event delivery and the
//! burst, the simulated model server) and the report holds every figure with the sizes
//! asked for. The figures themselves are not judged here: speed is the bench's job, not a
//! test's.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use campaign_cli::bench::{BenchOptions, run, table};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_phase_of_the_bench_runs_and_reports_its_figures() {
    let opts = BenchOptions {
        latency_runs: 3,
        throughput_runs: 30,
        floor_throughput_runs: 20,
        in_flight: 10,
        event_runs: 1,
        spawns: 1,
        bin_dir: std::path::PathBuf::from("/nonexistent-bench-binaries"),
        latencies: [2, 3, 4, 1],
        model_runs: 1,
        burst_limit: 2,
    };
    let r = run(&opts).await.unwrap();

    for (name, m) in [("parallel", &r.parallel), ("sequential", &r.sequential)] {
        assert_eq!(m.overhead_ms.n, 3, "{name}");
        assert!(m.total_ms.p50 >= m.critical_path_ms, "{name}: {m:?}");
        // A run is at least its submission, three agents' starts and ends, the audits and
        // the close; a transaction carries one request or more.
        assert!(m.store.requests >= 10.0, "{name}: {:?}", m.store);
        assert!(
            m.store.transactions >= 1.0 && m.store.transactions <= m.store.requests,
            "{name}: {:?}",
            m.store
        );
        // Every run writes (its creation, its steps, its close), and not with every
        // request (the engine reads a run's state too).
        assert!(
            m.store.writes >= 5.0 && m.store.writes < m.store.requests,
            "{name}: {:?}",
            m.store
        );
    }
    assert!(
        r.throughput_store.transactions <= r.throughput_store.requests,
        "{:?}",
        r.throughput_store
    );
    // The durable-commit floor of throughput: the disk's commits over a run's writes.
    let per_run = r.commit_floor_per_s / r.throughput_store.writes;
    assert!(
        (r.commit_floor_runs_per_s - per_run).abs() < 1e-6 * per_run,
        "{r:?}"
    );
    assert_eq!(r.parallel.critical_path_ms, 5.0);
    assert_eq!(r.sequential.critical_path_ms, 12.0);
    // The floors come from the same run, with the same sizes.
    for s in [
        &r.floor_parallel_overhead_ms,
        &r.floor_sequential_overhead_ms,
        &r.floor_parallel_waits_ms,
        &r.floor_sequential_waits_ms,
        &r.warm_parallel_overhead_ms,
        &r.warm_sequential_overhead_ms,
    ] {
        assert_eq!(s.n, 3);
    }
    // Waiting alone cannot end before its critical path.
    assert!(r.floor_parallel_waits_ms.p50 >= 0.0, "{r:?}");
    assert!(r.floor_sequential_waits_ms.p50 >= 0.0, "{r:?}");
    assert_eq!(r.idle_ms, 4, "the longest simulated wait");
    assert_eq!(r.memory_read_hot_ms.n, 100);
    assert_eq!(r.memory_read_after_idle_ms.n, 100);
    assert!(r.throughput_runs_per_s > 0.0 && r.floor_throughput_runs_per_s > 0.0);
    assert_eq!((r.throughput_runs, r.floor_throughput_runs), (30, 20));
    assert!(r.commit_floor_per_s > 0.0);
    assert_eq!(r.burst_lost, 0, "{r:?}");
    assert_eq!(
        r.burst_accepted + r.burst_refused,
        20,
        "the burst asked for: {r:?}"
    );
    assert!(r.burst_refused > 0, "ten times the limit at once: {r:?}");
    assert!(table(&r).contains("burst of 20 submissions at once against --max-in-flight 2"));
    // `--burst-limit 0` skips it, and the table says so instead of judging nothing.
    let skipped = campaign_cli::bench::BenchReport {
        burst_limit: 0,
        burst_accepted: 0,
        burst_refused: 0,
        ..r.clone()
    };
    assert!(table(&skipped).contains("| not run (--burst-limit 0) |"));
    // No function binaries there: said, not silently skipped.
    assert!(r.cold_starts.is_empty());
    let note = r.cold_start_note.as_deref().unwrap();
    assert!(note.contains("is missing"), "{note}");

    let printed = table(&r);
    for row in [
        "orchestration overhead, parallel",
        "store work per run, sequential: requests / refused / writes / transactions",
        "throughput ÷ durable-commit floor",
        "floor: a sequential run's simulated waits alone",
        "every simulated latency zero",
        "reading 1 MiB once, hot / after 4 ms idle",
        "cold starts not measured",
    ] {
        assert!(printed.contains(row), "missing `{row}` in\n{printed}");
    }
}
