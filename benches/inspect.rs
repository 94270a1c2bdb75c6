//! Benchmark: the disk-format inspector over a 1 GiB qcow2 in 64 KiB chunks.
//!
//! Self-contained and rerunnable: `cargo bench --bench inspect`. The first
//! run writes 1 GiB of pseudo-random data to /tmp/portcullis-bench/ and
//! converts it with `qemu-img convert -O qcow2` (kept for later runs; set
//! `PORTCULLIS_BENCH_DIR` to use another directory). It prints, as medians
//! of 5 runs: plain 64 KiB reads of the file (page cache), the same reads
//! feeding the inspector, and the inspector alone over the file held in
//! memory, with the target (5 GB/s) and oslo.utils' figure (3.28 GB/s for
//! all inspectors at 64 KiB, reference §7) as ratios.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use portcullis::inspect::{Format, Inspector};

const GIB: u64 = 1 << 30;
const CHUNK: usize = 64 * 1024;
const RUNS: usize = 5;
const TARGET_GB_S: f64 = 5.0;
const OSLO_GB_S: f64 = 3.28;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, String> {
    let dir = std::env::var_os("PORTCULLIS_BENCH_DIR")
        .map_or_else(|| PathBuf::from("/tmp/portcullis-bench"), PathBuf::from);
    let image = prepare(&dir)?;
    let n_bytes = std::fs::metadata(&image)
        .map_err(|err| format!("{}: {err}", image.display()))?
        .len();
    println!(
        "inspect benchmark: {} ({n_bytes} bytes), {} KiB chunks, median of {RUNS}",
        image.display(),
        CHUNK / 1024
    );

    let read_only = median(RUNS, || read_file(&image, None))?;
    let read_inspect = median(RUNS, || read_file(&image, Some(&mut Inspector::new())))?;
    let data = std::fs::read(&image).map_err(|err| format!("{}: {err}", image.display()))?;
    let inspect_only = median(RUNS, || Ok(inspect_memory(&data)))?;

    // The report must be right, or the figures mean nothing.
    let mut inspector = Inspector::new();
    for chunk in data.chunks(CHUNK) {
        inspector.update(chunk);
    }
    let report = inspector.finish();
    if report.format() != Some(Format::Qcow2)
        || report.virtual_size() != Some(GIB)
        || !report.is_safe()
    {
        return Err(format!(
            "unexpected report for the benchmark image: {report:?}"
        ));
    }

    let gbs = |elapsed: Duration| n_bytes as f64 / elapsed.as_secs_f64() / 1e9;
    let rows = [
        ("plain read, 64 KiB", read_only),
        ("read + inspector, 64 KiB", read_inspect),
        ("inspector alone (in memory), 64 KiB", inspect_only),
    ];
    for (label, elapsed) in rows {
        println!(
            "{label:<40} {:>9.3} ms  {:>8.2} GB/s",
            elapsed.as_secs_f64() * 1e3,
            gbs(elapsed)
        );
    }
    let per_chunk_ns = inspect_only.as_nanos() as f64 / (n_bytes as f64 / CHUNK as f64);
    println!("inspector cost per 64 KiB chunk: {per_chunk_ns:.1} ns");
    let inspector_gbs = gbs(inspect_only);
    let pipeline_gbs = gbs(read_inspect);
    println!(
        "inspector alone: {:.1}x the {TARGET_GB_S} GB/s target, {:.1}x oslo.utils ({OSLO_GB_S} GB/s)",
        inspector_gbs / TARGET_GB_S,
        inspector_gbs / OSLO_GB_S
    );
    println!(
        "read + inspector: {:.2}x the {TARGET_GB_S} GB/s target, {:.2}x oslo.utils; time vs plain reads {:+.1}% (noise when near 0)",
        pipeline_gbs / TARGET_GB_S,
        pipeline_gbs / OSLO_GB_S,
        (read_inspect.as_secs_f64() / read_only.as_secs_f64() - 1.0) * 100.0
    );
    let pass = inspector_gbs >= TARGET_GB_S;
    println!("result: {}", if pass { "PASS" } else { "FAIL" });
    Ok(pass)
}

/// The median duration of `runs` runs of `work`.
fn median(
    runs: usize,
    mut work: impl FnMut() -> Result<Duration, String>,
) -> Result<Duration, String> {
    let mut times = (0..runs).map(|_| work()).collect::<Result<Vec<_>, _>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

/// Reads the file in 64 KiB chunks, feeding `inspector` when given.
fn read_file(path: &Path, mut inspector: Option<&mut Inspector>) -> Result<Duration, String> {
    let mut file = File::open(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let mut buffer = vec![0u8; CHUNK];
    let start = Instant::now();
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|err| format!("{}: {err}", path.display()))?;
        if n == 0 {
            break;
        }
        if let Some(inspector) = inspector.as_deref_mut() {
            inspector.update(&buffer[..n]);
        }
    }
    Ok(start.elapsed())
}

/// Feeds `data` to a fresh inspector in 64 KiB chunks.
fn inspect_memory(data: &[u8]) -> Duration {
    let start = Instant::now();
    let mut inspector = Inspector::new();
    for chunk in data.chunks(CHUNK) {
        inspector.update(std::hint::black_box(chunk));
    }
    let report = std::hint::black_box(inspector.finish());
    let elapsed = start.elapsed();
    drop(report);
    elapsed
}

/// Makes (once) a qcow2 holding 1 GiB of pseudo-random data.
fn prepare(dir: &Path) -> Result<PathBuf, String> {
    let image = dir.join("inspect-1g.qcow2");
    if image.exists() {
        return Ok(image);
    }
    std::fs::create_dir_all(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    let raw = dir.join("inspect-1g.raw");
    eprintln!("writing 1 GiB of pseudo-random data to {}", raw.display());
    let file = File::create(&raw).map_err(|err| format!("{}: {err}", raw.display()))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        for word in block.chunks_exact_mut(8) {
            // xorshift64*: fast, and incompressible enough for qcow2.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            word.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        writer
            .write_all(&block)
            .map_err(|err| format!("{}: {err}", raw.display()))?;
    }
    writer
        .flush()
        .map_err(|err| format!("{}: {err}", raw.display()))?;
    drop(writer);
    eprintln!("converting to {} with qemu-img", image.display());
    let partial = dir.join("inspect-1g.qcow2.partial");
    let status = Command::new("qemu-img")
        .args(["convert", "-O", "qcow2"])
        .arg(&raw)
        .arg(&partial)
        .status()
        .map_err(|err| format!("cannot run qemu-img (install qemu-utils): {err}"))?;
    let _ = std::fs::remove_file(&raw);
    if !status.success() {
        return Err(format!("qemu-img convert failed: {status}"));
    }
    std::fs::rename(&partial, &image).map_err(|err| format!("{}: {err}", image.display()))?;
    Ok(image)
}
