/* The C-variadic corner of the PD's C runtime (the rest is Rust, pds/tpm-engine/src/crt):
 * stable Rust can neither define `...` functions nor walk a va_list, so the printf
 * family lives here. Formatting covers what libtpms and OpenSSL print (debug and
 * error text): %d %i %u %x %X %o %c %s %p %%, flags '-' '0' ' ' '+', width and
 * precision (also '*'), length modifiers hh h l ll z j t. Floating point is not
 * supported (the PDs have no FPU state): %f and friends print "?".
 * Output of the stream functions goes to crt_write (Rust: the PD's log sink). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _IO_FILE FILE;
void crt_write(const char *bytes, size_t len);

struct out {
    char *buf;
    size_t cap;
    size_t len;
};

static void put(struct out *o, char c)
{
    if (o->len + 1 < o->cap)
        o->buf[o->len] = c;
    o->len++;
}

static void pad(struct out *o, char c, int n)
{
    while (n-- > 0)
        put(o, c);
}

static void put_number(struct out *o, uintmax_t v, int neg, unsigned base, int upper,
                       int width, int prec, int left, char padc, char sign)
{
    char tmp[64];
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    int n = 0;
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v && n < (int)sizeof(tmp));
    if (prec == 0 && n == 1 && tmp[0] == '0')
        n = 0;
    int zeros = prec > n ? prec - n : 0;
    char s = neg ? '-' : sign;
    int total = n + zeros + (s ? 1 : 0);
    if (prec >= 0)
        padc = ' ';
    if (!left && padc == ' ')
        pad(o, ' ', width - total);
    if (s)
        put(o, s);
    if (!left && padc == '0')
        pad(o, '0', width - total);
    pad(o, '0', zeros);
    while (n > 0)
        put(o, tmp[--n]);
    if (left)
        pad(o, ' ', width - total);
}

int vsnprintf(char *buf, size_t cap, const char *fmt, va_list ap)
{
    struct out o = {buf, cap, 0};
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(&o, *fmt);
            continue;
        }
        fmt++;
        int left = 0, width = 0, prec = -1;
        char padc = ' ', sign = 0;
        for (;; fmt++) {
            if (*fmt == '-')
                left = 1;
            else if (*fmt == '0')
                padc = '0';
            else if (*fmt == '+')
                sign = '+';
            else if (*fmt == ' ')
                sign = sign ? sign : ' ';
            else if (*fmt != '#')
                break;
        }
        if (*fmt == '*') {
            width = va_arg(ap, int);
            if (width < 0) {
                left = 1;
                width = -width;
            }
            fmt++;
        } else
            while (*fmt >= '0' && *fmt <= '9')
                width = width * 10 + (*fmt++ - '0');
        if (*fmt == '.') {
            fmt++;
            prec = 0;
            if (*fmt == '*') {
                prec = va_arg(ap, int);
                fmt++;
            } else
                while (*fmt >= '0' && *fmt <= '9')
                    prec = prec * 10 + (*fmt++ - '0');
        }
        int lng = 0; /* 0 int, 1 long, 2 long long / size_t / intmax_t */
        while (*fmt == 'h' || *fmt == 'l' || *fmt == 'z' || *fmt == 'j' || *fmt == 't') {
            if (*fmt == 'l' || *fmt == 'z' || *fmt == 'j' || *fmt == 't')
                lng++;
            fmt++;
        }
        uintmax_t u;
        intmax_t i;
        switch (*fmt) {
        case 'd':
        case 'i':
            i = lng >= 2 ? va_arg(ap, long long) : lng ? va_arg(ap, long) : va_arg(ap, int);
            put_number(&o, i < 0 ? -(uintmax_t)i : (uintmax_t)i, i < 0, 10, 0, width, prec,
                       left, padc, sign);
            break;
        case 'u':
        case 'x':
        case 'X':
        case 'o':
            u = lng >= 2 ? va_arg(ap, unsigned long long)
                : lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
            put_number(&o, u, 0, *fmt == 'u' ? 10 : *fmt == 'o' ? 8 : 16, *fmt == 'X', width,
                       prec, left, padc, 0);
            break;
        case 'p':
            put(&o, '0');
            put(&o, 'x');
            put_number(&o, (uintptr_t)va_arg(ap, void *), 0, 16, 0, 0, -1, 0, ' ', 0);
            break;
        case 'c':
            pad(&o, ' ', left ? 0 : width - 1);
            put(&o, (char)va_arg(ap, int));
            pad(&o, ' ', left ? width - 1 : 0);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            int n = 0;
            while (s[n] && (prec < 0 || n < prec))
                n++;
            pad(&o, ' ', left ? 0 : width - n);
            for (int k = 0; k < n; k++)
                put(&o, s[k]);
            pad(&o, ' ', left ? width - n : 0);
            break;
        }
        case '%':
            put(&o, '%');
            break;
        case '\0':
            fmt--;
            break;
        default:
            /* floating point and the rest: consumes nothing it cannot name */
            put(&o, '?');
            break;
        }
    }
    if (cap)
        buf[o.len < cap ? o.len : cap - 1] = '\0';
    return (int)o.len;
}

int snprintf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

int sprintf(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, SIZE_MAX, fmt, ap);
    va_end(ap);
    return n;
}

int vfprintf(FILE *f, const char *fmt, va_list ap)
{
    char line[256];
    (void)f;
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    crt_write(line, n < (int)sizeof(line) ? (size_t)n : sizeof(line) - 1);
    return n;
}

int fprintf(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(f, fmt, ap);
    va_end(ap);
    return n;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vfprintf(NULL, fmt, ap);
    va_end(ap);
    return n;
}

int vprintf(const char *fmt, va_list ap)
{
    return vfprintf(NULL, fmt, ap);
}

/* Any descriptor: there are no files, so the log it is. */
int vdprintf(int fd, const char *fmt, va_list ap)
{
    (void)fd;
    return vfprintf(NULL, fmt, ap);
}

int dprintf(int fd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vdprintf(fd, fmt, ap);
    va_end(ap);
    return n;
}

void *malloc(size_t size);

int asprintf(char **out, const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf)
        vsnprintf(buf, (size_t)n + 1, fmt, again);
    va_end(again);
    *out = buf;
    return buf ? n : -1;
}
