//! `tclearn-check-model`: the model checks' child alone (`tclearn-check-model check-model`, a
//! task on standard input), for the sandbox's own tests; the members' API, `tclearn` and the
//! oracle are their own children.

fn main() {
    tclearn_sandbox::checks::serve_if_child();
    eprintln!("usage: tclearn-check-model {} < task", tclearn_sandbox::checks::SUBCOMMAND);
    std::process::exit(2);
}
