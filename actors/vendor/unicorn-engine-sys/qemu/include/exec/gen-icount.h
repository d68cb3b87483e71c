#ifndef GEN_ICOUNT_H
#define GEN_ICOUNT_H

#include "qemu/timer.h"

/* Helpers for instruction counting code generation.  */

static inline void gen_io_start(TCGContext *tcg_ctx)
{
    TCGv_i32 tmp = tcg_const_i32(tcg_ctx, 1);
    tcg_gen_st_i32(tcg_ctx, tmp, tcg_ctx->cpu_env,
                   offsetof(ArchCPU, parent_obj.can_do_io) -
                   offsetof(ArchCPU, env));
    tcg_temp_free_i32(tcg_ctx, tmp);
}

/*
 * cpu->can_do_io is cleared automatically at the beginning of
 * each translation block.  The cost is minimal and only paid
 * for -icount, plus it would be very easy to forget doing it
 * in the translator.  Therefore, backends only need to call
 * gen_io_start.
 */
static inline void gen_io_end(TCGContext *tcg_ctx)
{
    TCGv_i32 tmp = tcg_const_i32(tcg_ctx, 0);
    tcg_gen_st_i32(tcg_ctx, tmp, tcg_ctx->cpu_env,
                   offsetof(ArchCPU, parent_obj.can_do_io) -
                   offsetof(ArchCPU, env));
    tcg_temp_free_i32(tcg_ctx, tmp);
}

/*
 * coprocessor: the block prologue checks for an exit request inline (as
 * upstream QEMU does) instead of calling the check_exit_request helper.
 *
 * Unmetered block:  if (icount_decr.u16.high != 0) goto exitreq;
 * Metered block (CF_USE_ICOUNT):
 *     count = icount_decr.u16.low - <insns in this block>;
 *     icount_decr.u16.low = count;              // undone on exit, see
 *     if ((count | u16.high) < 0) goto exitreq; // cpu_tb_exec()
 *
 * On hosts with TCG_TARGET_METER_REG (x86-64) the counter is that register
 * for as long as generated code runs (the prologue and epilogue move it
 * from and to icount_decr.u16.low, and so does every helper call), so the
 * metered prologue is:
 *     meter -= <insns in this block>;
 *     if ((meter | u16.high) < 0) goto exitreq;
 * On other hosts it works on memory:
 *
 * The two halves are read with two 16-bit loads: a 32-bit load right after
 * the previous block's 16-bit store of the counter cannot be served by
 * store forwarding and stalls. The counter is stored before the branch so
 * that no temporary has to live across it (no local temp, no spill).
 * Targets with delay slots keep Unicorn's helper.
 */
static inline void gen_tb_start(TCGContext *tcg_ctx, TranslationBlock *tb)
{
    if (tcg_ctx->delay_slot_flag == NULL) {
        TCGv_i32 high = tcg_temp_new_i32(tcg_ctx);
        tcg_ctx->exitreq_label = gen_new_label(tcg_ctx);
        tcg_gen_ld16s_i32(tcg_ctx, high, tcg_ctx->cpu_env,
                          offsetof(ArchCPU, neg.icount_decr.u16.high) -
                          offsetof(ArchCPU, env));
        if ((tb_cflags(tb) & CF_USE_ICOUNT) && tcg_ctx->meter != NULL) {
            /* The meter is a host register (TCG_TARGET_METER_REG): a
               register subtract, no memory round trip between blocks. */
            TCGv_i32 imm = tcg_temp_new_i32(tcg_ctx);
            /* The block length is patched in by gen_tb_end. */
            tcg_gen_movi_i32(tcg_ctx, imm, 0xdeadbeef);
            tcg_ctx->icount_start_insn = tcg_last_op(tcg_ctx);
            tcg_gen_sub_i32(tcg_ctx, tcg_ctx->meter, tcg_ctx->meter, imm);
            tcg_gen_or_i32(tcg_ctx, high, high, tcg_ctx->meter);
            tcg_temp_free_i32(tcg_ctx, imm);
            tcg_gen_brcondi_i32(tcg_ctx, TCG_COND_LT, high, 0,
                                tcg_ctx->exitreq_label);
        } else if (tb_cflags(tb) & CF_USE_ICOUNT) {
            TCGv_i32 count = tcg_temp_new_i32(tcg_ctx);
            TCGv_i32 imm = tcg_temp_new_i32(tcg_ctx);
            tcg_gen_ld16u_i32(tcg_ctx, count, tcg_ctx->cpu_env,
                              offsetof(ArchCPU, neg.icount_decr.u16.low) -
                              offsetof(ArchCPU, env));
            /* The block length is patched in by gen_tb_end. */
            tcg_gen_movi_i32(tcg_ctx, imm, 0xdeadbeef);
            tcg_ctx->icount_start_insn = tcg_last_op(tcg_ctx);
            tcg_gen_sub_i32(tcg_ctx, count, count, imm);
            tcg_gen_st16_i32(tcg_ctx, count, tcg_ctx->cpu_env,
                             offsetof(ArchCPU, neg.icount_decr.u16.low) -
                             offsetof(ArchCPU, env));
            tcg_gen_or_i32(tcg_ctx, high, high, count);
            tcg_temp_free_i32(tcg_ctx, imm);
            tcg_temp_free_i32(tcg_ctx, count);
            tcg_gen_brcondi_i32(tcg_ctx, TCG_COND_LT, high, 0,
                                tcg_ctx->exitreq_label);
        } else {
            tcg_gen_brcondi_i32(tcg_ctx, TCG_COND_NE, high, 0,
                                tcg_ctx->exitreq_label);
        }
        tcg_temp_free_i32(tcg_ctx, high);
        return;
    }
    tcg_ctx->exitreq_label = NULL;

    TCGv_ptr puc = tcg_const_ptr(tcg_ctx, tcg_ctx->uc);
    TCGv_i32 tmp = tcg_const_i32(tcg_ctx, 0);
    // Unicorn:
    //    We CANT'T use brcondi_i32 here or we will fail liveness analysis
    //    because it marks the end of BB
    if (tcg_ctx->delay_slot_flag != NULL) {
        tcg_gen_mov_i32(tcg_ctx, tmp, tcg_ctx->delay_slot_flag);
    }
    gen_helper_check_exit_request(tcg_ctx, puc, tmp);
    tcg_temp_free_i32(tcg_ctx, tmp);
    tcg_temp_free_ptr(tcg_ctx, puc);
}

static inline void gen_tb_end(TCGContext *tcg_ctx, TranslationBlock *tb, int num_insns)
{
    if (tcg_ctx->delay_slot_flag != NULL){
        tcg_temp_free_i32(tcg_ctx, tcg_ctx->delay_slot_flag);
    }
    tcg_ctx->delay_slot_flag = NULL;
    if (tb_cflags(tb) & CF_USE_ICOUNT) {
        /* Update the num_insn immediate parameter now that we know
         * the actual insn count.  */
        tcg_set_insn_param(tcg_ctx->icount_start_insn, 1, num_insns);
    }

    if (tcg_ctx->exitreq_label != NULL) {
        gen_set_label(tcg_ctx, tcg_ctx->exitreq_label);
        tcg_ctx->exitreq_label = NULL;
    }
    tcg_gen_exit_tb(tcg_ctx, tb, TB_EXIT_REQUESTED);
}

#endif
