#include <stdint.h>
#include "qemu/osdep.h"
#include "qemu-common.h"
#include "exec/exec-all.h"
#include "uc_priv.h"

#include <stdio.h>

static void raise_mmu_exception(CPUState *cs, target_ulong address,
                                int rw, uintptr_t retaddr)
{
    cs->uc->invalid_error = UC_ERR_EXCEPTION;
    cs->uc->invalid_addr = address;
    cpu_exit(cs->uc->cpu);
    cpu_loop_exit_restore(cs, retaddr);
}

static uc_mem_type rw_to_mem_type(int rw)
{
    switch (rw) {
    case MMU_DATA_LOAD:
        return UC_MEM_READ;
    case MMU_DATA_STORE:
        return UC_MEM_WRITE;
    case MMU_INST_FETCH:
        return UC_MEM_FETCH;
    default:
        return UC_MEM_READ;
    }
}

static int perms_to_prot(int perms)
{
    int ret = 0;
    if (perms & UC_PROT_READ) {
        ret |= PAGE_READ;
    }
    if (perms & UC_PROT_WRITE) {
        ret |= PAGE_WRITE;
    }
    if (perms & UC_PROT_EXEC) {
        ret |= PAGE_EXEC;
    }
    return ret;
}

/*
 * Asks the TLB-fill hooks for the page of `address`: whether an access of
 * kind `rw` is allowed, and with which entry. With no hook, every access is
 * allowed on an identity mapping.
 */
static bool ask_tlb_hooks(struct uc_struct *uc, vaddr address,
                          MMUAccessType rw, uc_tlb_entry *e)
{
    bool handled = false;
    bool ret = false;
    struct hook *hook;
    HOOK_FOREACH_VAR_DECLARE;

    // coprocessor: upstream restores the guest state here on every fill so
    // that a hook can read the pc. That costs a search of the block's insn
    // data per TLB miss, and for a one-shot (CF_NOCACHE) block it frees the
    // block while it runs, so a later fault could not restore the exact
    // instruction count. Our hook does not read the pc; a fault still
    // restores exactly in raise_mmu_exception.

    HOOK_FOREACH(uc, hook, UC_HOOK_TLB_FILL) {
        if (hook->to_delete) {
            continue;
        }
        if (!HOOK_BOUND_CHECK(hook, address)) {
            continue;
        }
        handled = true;
        JIT_CALLBACK_GUARD_VAR(ret, ((uc_cb_tlbevent_t)hook->callback)(uc, address & TARGET_PAGE_MASK, rw_to_mem_type(rw), e, hook->user_data));
        if (ret) {
            break;
        }
    }

    if (handled && !ret) {
        return false;
    }

    if (!handled) {
        e->paddr = address & TARGET_PAGE_MASK;
        switch (rw) {
        case MMU_DATA_LOAD:
            e->perms = UC_PROT_READ;
            break;
        case MMU_DATA_STORE:
            e->perms = UC_PROT_WRITE;
            break;
        case MMU_INST_FETCH:
            e->perms = UC_PROT_EXEC;
            break;
        default:
            e->perms = 0;
            break;
        }
    }

    switch (rw) {
    case MMU_DATA_LOAD:
        return e->perms & UC_PROT_READ;
    case MMU_DATA_STORE:
        return e->perms & UC_PROT_WRITE;
    case MMU_INST_FETCH:
        return e->perms & UC_PROT_EXEC;
    default:
        return false;
    }
}

bool unicorn_fill_tlb(CPUState *cs, vaddr address, int size,
                      MMUAccessType rw, int mmu_idx,
                      bool probe, uintptr_t retaddr)
{
    uc_tlb_entry e;

    if (ask_tlb_hooks(cs->uc, address, rw, &e)) {
        tlb_set_page(cs, address & TARGET_PAGE_MASK, e.paddr & TARGET_PAGE_MASK, perms_to_prot(e.perms), mmu_idx, TARGET_PAGE_SIZE);
        return true;
    }
    if (probe) {
        return false;
    }
    raise_mmu_exception(cs, address, rw, retaddr);
    return false;
}

/* coprocessor: see exec-all.h and PATCHES.md 14. */
bool unicorn_coproc_touch(CPUState *cs, vaddr address, MMUAccessType rw)
{
    uc_tlb_entry e;

    return ask_tlb_hooks(cs->uc, address, rw, &e);
}
