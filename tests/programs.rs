//! Programs have names (labels: the ID stays keccak256 of the ELF), and
//! the engine keeps what each was registered as and what it ran.

mod common;

use common::engine::{u64_job, Engine};
use coprocessor_actors::program::ProgramId;
use coprocessor_actors::wire::{Call, NoParams, ProgramInfo, ProgramsReply};
use std::time::{SystemTime, UNIX_EPOCH};

fn listed(engine: &Engine, id: &ProgramId) -> ProgramInfo {
    let reply: ProgramsReply = engine.client().call(Call::ListPrograms(NoParams {})).unwrap();
    reply.programs.into_iter().find(|p| p.program_id.0 == id.0).expect("listed")
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

#[test]
fn a_program_lists_its_name_size_registration_and_the_jobs_it_ran_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let engine = Engine::start(&data);
    let data_arg = data.to_str().unwrap();
    let elf = common::guest("square-root");

    // The name defaults to the file's; --name gives another.
    let before = unix_ms();
    let out = common::coprocessor(&["program", "submit", elf.to_str().unwrap(), "--data-dir", data_arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = unix_ms();
    let id = ProgramId::of(&std::fs::read(&elf).unwrap());
    let fib = common::guest("fibonacci");
    let out =
        common::coprocessor(&["program", "submit", fib.to_str().unwrap(), "--name", "fib", "--data-dir", data_arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = common::coprocessor(&[
        "program",
        "submit",
        fib.to_str().unwrap(),
        "--name",
        "bad name!",
        "--data-dir",
        data_arg,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "error: program name \"bad name!\" must be 1 to 64 of A-Z a-z 0-9 . _ -\n"
    );

    // Three jobs: the listing counts them and their cycles.
    let signer = engine.dev_signer();
    let mut client = engine.client();
    let mut cycles = 0;
    for nonce in 0..3 {
        let job = u64_job(id, signer.address(), nonce, 1000 + nonce);
        let accepted: coprocessor_actors::wire::JobIdParams = client.call(Call::SubmitJob(job.sign(&signer))).unwrap();
        cycles += engine.wait_result(&mut client, &accepted.job_id.0).cycles.expect("cycles");
    }
    let program = listed(&engine, &id);
    assert_eq!((program.name.as_str(), program.jobs, program.cycles), ("square-root", 3, cycles));
    assert_eq!(program.size_bytes, std::fs::metadata(&elf).unwrap().len());
    assert!((before..=after).contains(&program.registered_unix_ms), "{program:?}");

    let table = String::from_utf8(common::coprocessor(&["program", "list", "--data-dir", data_arg]).stdout).unwrap();
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PROGRAM", "ISA", "BYTES", "REGISTERED", "JOBS", "CYCLES"]);
    let rows: Vec<Vec<String>> = lines.map(|l| l.split_whitespace().map(str::to_owned).collect()).collect();
    let row = rows.iter().find(|row| row[0] == "square-root").expect("square-root row");
    assert_eq!(row[5..], [3.to_string(), cycles.to_string()]);
    assert!(row[4].ends_with('Z') && row[4].len() == 20, "{row:?}");
    assert!(rows.iter().any(|row| row[0] == "fib" && row[5] == "0"), "{table}");

    // Durable: the same after a restart. A new name relabels it; the
    // registration time stays.
    drop(client);
    let engine = engine.restart();
    assert_eq!(listed(&engine, &id), program);
    let out =
        common::coprocessor(&["program", "submit", elf.to_str().unwrap(), "--name", "sqrt", "--data-dir", data_arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(listed(&engine, &id), ProgramInfo { name: "sqrt".into(), ..program });
}

#[test]
fn program_id_names_each_elf_as_an_engine_would_with_no_engine() {
    let (rv32, rv64) = (common::guest("square-root"), common::guest("rv64/fibonacci"));
    let id = |path: &std::path::Path| ProgramId::of(&std::fs::read(path).unwrap()).to_string();
    let out = common::coprocessor(&["program", "id", rv32.to_str().unwrap(), rv64.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{} rv32im {}\n{} rv64im {}\n", id(&rv32), rv32.display(), id(&rv64), rv64.display())
    );

    // For a consumer contract: one constant per ELF, named after the file.
    let out = common::coprocessor(&["program", "id", "--solidity", rv32.to_str().unwrap(), rv64.to_str().unwrap()]);
    let solidity = String::from_utf8(out.stdout).unwrap();
    assert!(solidity.contains("pragma solidity ^0.8.28;\n\nlibrary ProgramID {\n"), "{solidity}");
    let constant = |name: &str, path: &std::path::Path| {
        format!("    bytes internal constant {name} = hex\"{}\";\n", &id(path)[2..])
    };
    assert!(solidity.contains(&constant("SQUARE_ROOT_ID", &rv32)), "{solidity}");
    assert!(solidity.contains(&constant("FIBONACCI_ID", &rv64)), "{solidity}");
    assert!(solidity.ends_with("}\n"), "{solidity}");

    // What it refuses: what an engine would refuse, and names Solidity cannot take.
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.elf");
    std::fs::write(&text, "hello\n").unwrap();
    let digit = dir.path().join("9lives.elf");
    std::fs::copy(&rv32, &digit).unwrap();
    let twice = common::guest("rv64/square-root");
    let refused = |args: &[&std::path::Path]| {
        let mut all = vec!["program", "id", "--solidity"];
        all.extend(args.iter().map(|path| path.to_str().unwrap()));
        let out = common::coprocessor(&all);
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    assert_eq!(refused(&[&text]), format!("error: {}: not an elf file (bad magic)\n", text.display()));
    assert_eq!(
        refused(&[&digit]),
        format!("error: {}: 9LIVES_ID is not a Solidity name; rename the file\n", digit.display())
    );
    assert_eq!(refused(&[&rv32, &twice]), format!("error: {}: a second ELF named SQUARE_ROOT_ID\n", twice.display()));
}
