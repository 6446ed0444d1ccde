//! The `warren` binary: the broker (parse the command line, start the
//! shards, serve until SIGINT/SIGTERM), or `warren ctl …`, the admin client.

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// A shard's idle release (`shard::ticker`): mimalloc frees only on the
/// calls of the thread that owns a page, and purges freed memory back to
/// the OS only on a later call (after its purge delay), so a shard that
/// goes idle after a flood would keep what the flood left. A forced
/// collect on the shard's thread frees its empty pages (blocks other
/// threads freed into them too) and purges the freed ranges now.
fn release_freed_memory() {
    // SAFETY: mi_collect takes no pointers; it runs on the calling
    // thread's own heap and mimalloc's locked, process-wide arenas.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("ctl") {
        std::process::exit(warren::admin::client::run(&args[1..]));
    }
    let mut settings = match warren::config::parse(args, |k| std::env::var(k).ok()) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    warren::shard::ticker::set_idle_release(release_freed_memory);
    if let Err(e) = warren::logging::init(&settings.log_filter) {
        eprintln!("warren: {e}");
        std::process::exit(2);
    }
    if let Err(e) = std::fs::create_dir_all(&settings.data_dir) {
        eprintln!(
            "warren: cannot create data dir {}: {e}",
            settings.data_dir.display()
        );
        std::process::exit(1);
    }
    // Resolve the data dir once: the shards' io_uring opens need an absolute
    // path (a relative one fails with EBADF), and the log lines name it.
    match std::fs::canonicalize(&settings.data_dir) {
        Ok(dir) => settings.data_dir = dir,
        Err(e) => {
            eprintln!(
                "warren: cannot resolve data dir {}: {e}",
                settings.data_dir.display()
            );
            std::process::exit(1);
        }
    }
    if let Err(e) = warren::server::run(settings) {
        eprintln!("warren: {e}");
        std::process::exit(1);
    }
}
