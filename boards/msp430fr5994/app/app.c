/* sparsenest firmware application: run a schedule of inferences at chosen levels, record the results
 * in FRAM, print them on the UART. See sn_app.h for the data layout and the marker functions. */
#include "sn_app.h"

#include "sn_uart.h"
#include "sparsenest.h"

sn_app_results_t sn_app_results SN_FRAM_NOINIT;

/* The inputs are data read once per inference: they live in upper FRAM (sn_app.h) and each is copied
 * by DMA straight into the model's input buffer, so lower FRAM keeps its room for code, tables and
 * the activation arena (SqueezeNext-CIFAR's 6 KB input would not fit beside them). */
SN_DEFINE_FAR_ADDR(sn_app_inputs_far, sn_app_inputs);
#define SN_APP_INPUT_BYTES (2u * SN_MODEL_INPUT_LEN)

/* ---- timing: Timer_A0 counting SMCLK / 64, extended to 32 bits by its overflow interrupt ------
 * (chip image only; the simulator has no timer: its driver counts instructions and cycles). */
#if !SN_SIM
#define TA0CTL_  SN_REG16(0x0340)
#define TA0R_    SN_REG16(0x0350)
#define TA0EX0_  SN_REG16(0x0360)
#define TA0IV_   SN_REG16(0x036E)
#define TA_SMCLK 0x0200u
#define TA_ID_8  0x00C0u
#define TA_CONT  0x0020u
#define TA_CLR   0x0004u
#define TA_IE    0x0002u
#define TA_IFG   0x0001u
#define TA_IDEX_8 0x0007u
#ifndef SN_MCLK_HZ
#error "SN_MCLK_HZ: the build passes the clock of boards/msp430fr5994/board.toml as -DSN_MCLK_HZ"
#endif
#define SN_APP_TICK_HZ ((uint32_t)SN_MCLK_HZ / 64u)

static volatile uint16_t ta_high;

/* TIMER0_A1 (TAIFG) is vector 0xFFE8: slot (0xFFE8 - 0xFF80) / 2 = 52. */
SN_ISR(52, sn_app_timer_isr)
{
    if (TA0IV_ == 0x000Eu) /* reading TA0IV clears the highest pending flag; 0x0E = overflow */
        ta_high++;
}

static void timer_start(void)
{
    TA0CTL_ = TA_CLR;
    TA0EX0_ = TA_IDEX_8;
    TA0CTL_ = TA_SMCLK | TA_ID_8 | TA_CONT | TA_IE | TA_CLR;
    __asm__ volatile("nop\n\teint\n\tnop" ::: "memory");
}

static uint32_t ticks(void)
{
    sn_irq_state_t s = sn_irq_save();
    uint16_t hi = ta_high;
    uint16_t lo = TA0R_;
    if (TA0CTL_ & TA_IFG) { /* wrapped, interrupt not serviced yet */
        lo = TA0R_;
        hi++;
    }
    sn_irq_restore(s);
    return ((uint32_t)hi << 16) | lo;
}
#else
#define SN_APP_TICK_HZ 0u
static void timer_start(void) {}
static uint32_t ticks(void) { return 0; }
#endif

/* ---- markers (breakpoint targets for the simulator driver) ---------------------------------- */
__attribute__((noinline, used)) void sn_app_mark(uint16_t what)
{
    __asm__ volatile("" : : "r"(what) : "memory");
}

#ifdef SN_LAYER_HOOK
__attribute__((noinline, used)) void sn_board_layer_done(uint16_t layer)
{
    __asm__ volatile("" : : "r"(layer) : "memory");
}
#endif

/* ---- energy policy -------------------------------------------------------------------------- */
uint8_t sn_app_level_for_energy(uint16_t energy)
{
    uint8_t level = 1;
    for (uint8_t i = 0; i + 1u < SN_MODEL_N_LEVELS; i++)
        if (energy >= sn_app_thresholds[i])
            level++;
    return level;
}

__attribute__((weak)) uint16_t sn_app_read_energy(const sn_app_step *step)
{
    return step->energy;
}

/* ---- UART report ---------------------------------------------------------------------------- */
#if SN_APP_UART
static void put_kv(const char *key, int32_t v)
{
    sn_uart_puts(key);
    sn_uart_put_i32(v);
}

static void report_header(const sn_info *info)
{
    sn_uart_puts("sparsenest levels ");
    sn_uart_put_u32(info->n_levels);
    sn_uart_puts(info->switching == SN_SWITCH_STAGED ? " staged" : " resident");
    put_kv(" steps ", sn_app_n_steps);
    put_kv(" tick_hz ", (int32_t)SN_APP_TICK_HZ);
    sn_uart_puts("\r\n");
}

static void report_step(const sn_app_record *r)
{
    put_kv("s ", r->step);
    put_kv(" L ", r->level);
    put_kv(" in ", r->input);
    put_kv(" p ", r->pred);
    put_kv(" rc ", r->rc_switch);
    put_kv(" ", r->rc_infer);
    if (r->energy != SN_APP_ENERGY_NONE)
        put_kv(" e ", r->energy);
    sn_uart_puts(" t ");
    sn_uart_put_u32(r->switch_ticks);
    sn_uart_puts(" ");
    sn_uart_put_u32(r->infer_ticks);
    sn_uart_puts("\r\n");
}
#endif

static uint16_t argmax(const int16_t *v, uint16_t n)
{
    uint16_t best = 0;
    for (uint16_t i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

int main(void)
{
    sn_app_header *h = &sn_app_results.hdr;
    sn_info info;
    uint16_t n_steps = sn_app_n_steps > SN_APP_MAX_STEPS ? SN_APP_MAX_STEPS : sn_app_n_steps;
    int rc;

    h->magic = SN_APP_MAGIC;
    h->version = SN_APP_VERSION;
    h->n_steps = n_steps;
    h->n_done = 0;
    h->status = 0;
    h->n_levels = SN_MODEL_N_LEVELS;
    h->out_len = SN_MODEL_OUTPUT_LEN;
    h->record_bytes = sizeof(sn_app_record);
    h->tick_hz = SN_APP_TICK_HZ;
    timer_start();
    sn_model_info(&info);
    h->switching = info.switching;
#if SN_APP_UART
    sn_uart_init(SN_UART_115200);
    report_header(&info);
#endif
    rc = sn_init();
    if (rc != SN_OK) {
        h->status = (int16_t)rc;
#if SN_APP_UART
        put_kv("sn_init failed ", rc);
        sn_uart_puts("\r\n");
#endif
        return 1;
    }
#if SN_MODEL_INTERMITTENT
    /* A power failure interrupted an inference: finish it (at the level it started with) before the
     * schedule runs; its logits stay readable with sn_infer_done() until the next one starts. */
    if (sn_infer_pending()) {
        rc = sn_infer_resume();
#if SN_APP_UART
        put_kv("resumed ", rc);
        sn_uart_puts("\r\n");
#endif
    }
#endif
    for (uint16_t s = 0; s < n_steps; s++) {
        const sn_app_step *st = &sn_app_schedule[s];
        sn_app_record *r = &sn_app_results.rec[s];
        uint16_t energy = SN_APP_ENERGY_NONE;
        uint8_t want = st->level;
        uint32_t t0, t1, t2;

        if (want == 0) {
            energy = sn_app_read_energy(st);
            want = sn_app_level_for_energy(energy);
        }
        sn_app_mark(SN_APP_MARK_SWITCH);
        t0 = ticks();
        r->rc_switch = (int8_t)sn_set_level(want);
        t1 = ticks();
        sn_app_mark(SN_APP_MARK_INFER);
        if (st->input < SN_APP_N_INPUTS) {
            int16_t *in = sn_input_buffer();
            sn_far_read(in, sn_app_inputs_far + (uint32_t)st->input * SN_APP_INPUT_BYTES, SN_APP_INPUT_BYTES);
            r->rc_infer = (int8_t)sn_infer(in, r->out);
        } else
            r->rc_infer = SN_APP_ERR_INPUT;
        t2 = ticks();
        sn_app_mark(SN_APP_MARK_DONE);
        r->step = (uint8_t)s;
        r->requested = st->level;
        r->level = sn_get_level();
        r->input = st->input;
        r->pred = r->rc_infer == SN_OK ? argmax(r->out, SN_MODEL_OUTPUT_LEN) : 0xFFFFu;
        r->energy = energy;
        r->reserved = 0;
        r->switch_ticks = t1 - t0;
        r->infer_ticks = t2 - t1;
        if (h->status == 0 && (r->rc_switch != 0 || r->rc_infer != 0))
            h->status = r->rc_switch != 0 ? r->rc_switch : r->rc_infer;
        h->n_done = (uint16_t)(s + 1u);
#if SN_APP_UART
        report_step(r);
#endif
    }
#if SN_APP_UART
    put_kv("done ", h->n_done);
    put_kv(" status ", h->status);
    sn_uart_puts("\r\n");
#endif
    return h->status == 0 ? 0 : 2;
}
