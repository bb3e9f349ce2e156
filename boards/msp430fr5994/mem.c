/* memcpy, memset, memmove: LLVM emits calls to them (struct copies, zeroing loops) even in a
 * freestanding build, and there is no libc. Word loops when both pointers are even (memcpy: also
 * when both are odd, after one leading byte), byte loops otherwise. LLVM does not turn the loops of
 * functions with these names back into calls to themselves; the tests check the object has no
 * undefined references. */
#include <stddef.h>
#include <stdint.h>

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if ((((uintptr_t)d ^ (uintptr_t)s) & 1u) == 0 && n > 1) {
        /* same parity: one leading byte makes both even (a staged switch's row deltas start at odd
         * offsets of odd-sized byte arrays), then words */
        if ((uintptr_t)d & 1u) {
            *d++ = *s++;
            n--;
        }
        uint16_t *dw = (uint16_t *)d;
        const uint16_t *sw = (const uint16_t *)s;
        for (size_t k = n >> 1; k; k--)
            *dw++ = *sw++;
        d = (uint8_t *)dw;
        s = (const uint8_t *)sw;
        n &= 1u;
    }
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    uint8_t *d = dst;
    uint8_t b = (uint8_t)c;
    if (((uintptr_t)d & 1u) == 0) {
        /* b * 0x0101 written so that clang does not turn it into a multiply helper call */
        uint16_t w = b;
        __asm__("swpb %0" : "+r"(w));
        w |= b;
        uint16_t *dw = (uint16_t *)d;
        for (size_t k = n >> 1; k; k--)
            *dw++ = w;
        d = (uint8_t *)dw;
        n &= 1u;
    }
    while (n--)
        *d++ = b;
    return dst;
}

/* Copies forward when dst is below src, backward otherwise, so overlapping ranges work. */
void *memmove(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d == s || n == 0)
        return dst;
    int even = (((uintptr_t)d | (uintptr_t)s) & 1u) == 0;
    if ((uintptr_t)d < (uintptr_t)s) {
        if (even) {
            uint16_t *dw = (uint16_t *)d;
            const uint16_t *sw = (const uint16_t *)s;
            for (size_t k = n >> 1; k; k--)
                *dw++ = *sw++;
            d = (uint8_t *)dw;
            s = (const uint8_t *)sw;
            n &= 1u;
        }
        while (n--)
            *d++ = *s++;
    } else {
        d += n;
        s += n;
        if (even) {
            if (n & 1u) {
                *--d = *--s;
                n--;
            }
            uint16_t *dw = (uint16_t *)d;
            const uint16_t *sw = (const uint16_t *)s;
            for (size_t k = n >> 1; k; k--)
                *--dw = *--sw;
            return dst;
        }
        while (n--)
            *--d = *--s;
    }
    return dst;
}
