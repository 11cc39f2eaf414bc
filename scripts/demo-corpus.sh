#!/bin/sh
# Builds the demo corpus from Japanese and English documentation that Debian ships:
# the Debian Reference and the Debian FAQ, each in Japanese and English, as plain text files
# (one document per file) under the directory given as $1.
set -eu
out="${1:?usage: scripts/demo-corpus.sh OUTPUT_DIR}"
mkdir -p "$out"
for src in \
    /usr/share/debian-reference/debian-reference.ja.txt.gz \
    /usr/share/debian-reference/debian-reference.en.txt.gz \
    /usr/share/doc/debian/FAQ/debian-faq.ja.txt.gz \
    /usr/share/doc/debian/FAQ/debian-faq.en.txt.gz; do
    if [ ! -f "$src" ]; then
        echo "missing $src: install debian-reference-ja debian-reference-en debian-faq debian-faq-ja" >&2
        exit 1
    fi
    name=$(basename "$src" .gz)
    # Collapse runs of blank lines and indentation so the byte budget goes to prose.
    gzip -dc "$src" | sed -e 's/^[[:space:]]*//' | cat -s > "$out/$name"
done
du -sh "$out"
