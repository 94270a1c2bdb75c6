//! One staged write + commit of N MiB into a store, timed; run by
//! benches/store.sh (which measures each run's peak RSS from outside).
//!
//! ```text
//! store_put store URL SIZE_MIB          # Store::open_url(URL): stage, write, commit (then delete)
//! store_put tokio-fs DIR SIZE_MIB       # the filesystem write before the no-copy change:
//!                                       # tokio::fs::File::write_all per chunk, flush, sync, rename
//! store_put generate - SIZE_MIB         # only make the chunks (what every mode also pays)
//! ```
//!
//! Every mode makes the data the same way: 256 KiB chunks (the CLI's chunk
//! size), each a fresh allocation filled from a random pattern, as a reader
//! hands the pipeline fresh buffers. Prints one line of `key=value` figures.

use std::io::Write as _;
use std::time::Instant;

use bytes::Bytes;
use portcullis::image::ImageId;
use portcullis::store::Store;
use tokio::io::AsyncWriteExt;

const CHUNK: usize = 256 * 1024;

fn usage() -> ! {
    eprintln!("usage: store_put store|tokio-fs|generate URL|DIR|- SIZE_MIB");
    std::process::exit(2);
}

/// Fresh chunks of pseudo-random bytes, `total` bytes in all.
struct Chunks {
    pattern: Vec<u8>,
    left: usize,
    offset: usize,
}

impl Iterator for Chunks {
    type Item = Bytes;
    fn next(&mut self) -> Option<Bytes> {
        if self.left == 0 {
            return None;
        }
        let len = self.left.min(CHUNK);
        self.left -= len;
        self.offset = (self.offset + 4099) % (self.pattern.len() - CHUNK);
        Some(Bytes::copy_from_slice(
            &self.pattern[self.offset..self.offset + len],
        ))
    }
}

fn chunks(total: usize) -> Chunks {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let pattern = (0..(4 << 20) / 8)
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    Chunks {
        pattern,
        left: total,
        offset: 0,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; the script runs the binary directly.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| arg != "--bench")
        .collect();
    let [mode, target, size_mib] = args.as_slice() else {
        usage()
    };
    let Ok(size_mib) = size_mib.parse::<usize>() else {
        usage()
    };
    let total = size_mib << 20;
    let data = chunks(total);
    let started = Instant::now();
    let mut extra = String::new();
    match mode.as_str() {
        "generate" => {
            let mut n = 0usize;
            for chunk in data {
                n += std::hint::black_box(chunk).len();
            }
            assert_eq!(n, total);
        }
        "store" => {
            let store = Store::open_url(target).unwrap_or_else(|err| panic!("{err:#?}"));
            let id = ImageId::new_random();
            let mut staged = store.stage(id).await.expect("stage");
            for chunk in data {
                staged.write(chunk).await.expect("write");
            }
            let peak = staged.peak_held_bytes();
            let location = staged.commit().await.expect("commit");
            let elapsed = started.elapsed();
            extra = format!(
                " peak_held_mib={:.1} bound={:?}",
                peak as f64 / (1 << 20) as f64,
                store.buffer_bound()
            );
            store.delete(&location).await.expect("delete");
            return report(mode, total, elapsed.as_secs_f64(), &extra);
        }
        "tokio-fs" => {
            // The write path the filesystem store had before it took Bytes.
            let dir = std::path::Path::new(target);
            let staging = dir.join(format!("{}.part", ImageId::new_random()));
            let final_path = dir.join("committed");
            let mut file = tokio::fs::File::create(&staging).await.expect("create");
            for chunk in data {
                file.write_all(&chunk).await.expect("write");
            }
            file.flush().await.expect("flush");
            file.sync_all().await.expect("sync");
            drop(file);
            tokio::fs::rename(&staging, &final_path)
                .await
                .expect("rename");
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .expect("sync dir");
            let elapsed = started.elapsed();
            std::fs::remove_file(&final_path).expect("remove");
            return report(mode, total, elapsed.as_secs_f64(), &extra);
        }
        _ => usage(),
    }
    report(mode, total, started.elapsed().as_secs_f64(), &extra);
}

fn report(mode: &str, total: usize, seconds: f64, extra: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "mode={mode} bytes={total} seconds={seconds:.3} mbps={:.0}{extra}",
        total as f64 / seconds / 1e6
    );
}
