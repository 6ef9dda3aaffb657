// Wide-character ncurses for Swift. NCURSES_WIDECHAR must be set before curses.h so the
// cchar_t / wide APIs are declared; the macros Swift cannot import get small wrappers in EffTUI.
#ifndef EFFTERM_CNCURSESW_SHIM_H
#define EFFTERM_CNCURSESW_SHIM_H
#define NCURSES_WIDECHAR 1
#define _XOPEN_SOURCE_EXTENDED 1
#include <locale.h>
#include <wchar.h>
#include <ncursesw/curses.h>
#endif
