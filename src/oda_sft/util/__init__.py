"""Small pieces every area uses: atomic writes, names, paths, the subprocess seam, tables, time, messages."""
