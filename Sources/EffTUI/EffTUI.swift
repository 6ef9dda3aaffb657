// EffTUI: pure rendering into a cell grid, panes, layout, keymap, themes. Only the ncurses
// backend file imports CNCursesW.
