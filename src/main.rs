//! The `warren` binary: the broker (parse the command line, start the
//! shards, serve until SIGINT/SIGTERM), or `warren ctl …`, the admin client.

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

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
