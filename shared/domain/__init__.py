"""Pure domain rules: no I/O, no clocks read, no SDKs. Everything here is unit tested exhaustively."""
