// Wide-character ncurses for Swift. NCURSES_WIDECHAR must be set before curses.h so the
// cchar_t / wide APIs are declared; the macros Swift cannot import get small wrappers below.
#ifndef EFFTERM_CNCURSESW_SHIM_H
#define EFFTERM_CNCURSESW_SHIM_H
#define NCURSES_WIDECHAR 1
#define _XOPEN_SOURCE_EXTENDED 1
#include <locale.h>
#include <wchar.h>
#include <ncursesw/curses.h>
#include <ncursesw/term.h>

// Attribute bits (NCURSES_BITS is a function-like macro, invisible to Swift).
static inline attr_t effterm_a_normal(void) { return A_NORMAL; }
static inline attr_t effterm_a_bold(void) { return A_BOLD; }
static inline attr_t effterm_a_dim(void) { return A_DIM; }
static inline attr_t effterm_a_italic(void) { return A_ITALIC; }
static inline attr_t effterm_a_underline(void) { return A_UNDERLINE; }
static inline attr_t effterm_a_reverse(void) { return A_REVERSE; }

// Mouse masks: the wheel arrives as button 4 (up) and button 5 (down) presses.
static inline mmask_t effterm_wheel_up_mask(void) { return BUTTON4_PRESSED; }
static inline mmask_t effterm_wheel_down_mask(void) { return BUTTON5_PRESSED; }
static inline mmask_t effterm_button1_mask(void) { return BUTTON1_PRESSED | BUTTON1_CLICKED; }

static inline WINDOW *effterm_stdscr(void) { return stdscr; }
static inline int effterm_key_f(int n) { return KEY_F(n); }

// Sets a one-character cchar_t with an extended colour pair (pair numbers beyond 32767).
static inline int effterm_setcchar(cchar_t *out, const wchar_t *wch, attr_t attrs, int pair) {
    return setcchar(out, wch, attrs, 0, &pair);
}
#endif
