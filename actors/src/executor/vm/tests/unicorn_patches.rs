//! The store fast path patch keeps Unicorn's semantics: a write hook added
//! after a run still fires, and self-modifying code on an RWX page is seen.
//! (The speed of a store loop is measured in `benches/`.)

use super::asm::{b, i, s, Asm};
use std::cell::Cell;
use std::rc::Rc;
use unicorn_engine::unicorn_const::{Arch, HookType, MemType, Mode, Prot};
use unicorn_engine::{RegisterRISCV, Unicorn};

const CODE: u64 = 0x1_0000;
const DATA: u64 = 0x2_0000;

fn load(uc: &mut Unicorn<'_, ()>, program: &Asm, perms: Prot) {
    let text: Vec<u8> = program.text.iter().flat_map(|w| w.to_le_bytes()).collect();
    uc.mem_map(CODE, 0x1000, perms).expect("map code");
    uc.mem_write(CODE, &text).expect("write code");
}

#[test]
fn a_write_hook_added_after_a_run_fires() {
    // 10 stores to DATA, then stop at the end address.
    let mut p = Asm::new();
    p.raw(i(0x13, 5, 0, 0, 10)); // li x5, 10
    p.raw(0x0002_0337); // lui x6, 0x20
    p.raw(s(2, 6, 5, 0)).raw(i(0x13, 5, 0, 5, -1)).raw(b(1, 5, 0, -8));
    let end = CODE + 4 * p.text.len() as u64;
    let mut uc = Unicorn::new(Arch::RISCV, Mode::RISCV32).expect("unicorn");
    load(&mut uc, &p, Prot::READ | Prot::EXEC);
    uc.mem_map(DATA, 0x1000, Prot::READ | Prot::WRITE).expect("map data");

    uc.emu_start(CODE, end, 0, 0).expect("first run, no hook");
    let writes = Rc::new(Cell::new(0));
    let seen = writes.clone();
    uc.add_mem_hook(HookType::MEM_WRITE, DATA, DATA + 0xfff, move |_, kind, _, _, _| {
        assert_eq!(kind, MemType::WRITE);
        seen.set(seen.get() + 1);
        true
    })
    .expect("hook");
    uc.emu_start(CODE, end, 0, 0).expect("second run");
    assert_eq!(writes.get(), 10);
}

#[test]
fn self_modifying_code_on_an_rwx_page_is_seen() {
    // Runs `addi a0, a0, 1` twice; between the runs the code overwrites it
    // with `addi a0, a0, 100`.
    let mut p = Asm::new();
    let patched = i(0x13, 10, 0, 10, 100);
    p.raw(i(0x13, 10, 0, 0, 0)); // 0: li a0, 0
    p.raw(i(0x13, 5, 0, 0, 2)); // 4: li x5, 2 (iterations)
    p.raw(0x0001_0337); // 8: lui x6, 0x10 (the code page)
    p.raw(i(0x13, 10, 0, 10, 1)); // 12: addi a0, a0, 1   <- patched
    p.raw(0x0000_03b7 | (((patched + 0x800) >> 12) << 12)); // 16: lui x7, hi(patched)
    p.raw(i(0x13, 7, 0, 7, ((patched & 0xfff) as i32) << 20 >> 20)); // 20: addi x7, x7, lo
    p.raw(s(2, 6, 7, 12)); // 24: sw x7, 12(x6)
    p.raw(i(0x13, 5, 0, 5, -1)); // 28: addi x5, x5, -1
    p.raw(b(1, 5, 0, -20)); // 32: bne x5, x0, 12
    let end = CODE + 4 * p.text.len() as u64;
    let mut uc = Unicorn::new(Arch::RISCV, Mode::RISCV32).expect("unicorn");
    load(&mut uc, &p, Prot::ALL);
    uc.emu_start(CODE, end, 0, 0).expect("run");
    assert_eq!(uc.reg_read(RegisterRISCV::X10).expect("a0"), 101);
}
