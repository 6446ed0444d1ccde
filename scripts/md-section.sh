# Sourced by the bench scripts: the Markdown section they regenerate.
#
# splice_section OUT SECTION NAME: replaces the lines of OUT from the one
# holding "<!-- NAME:begin" to the one holding "<!-- NAME:end -->" with the
# file SECTION (which carries those markers itself), keeping everything
# else. Returns 1 and changes nothing when OUT lacks either marker.
splice_section() {
    local out=$1 section=$2 name=$3
    [ -f "$out" ] && grep -q "<!-- $name:begin" "$out" && grep -q "<!-- $name:end -->" "$out" || return 1
    awk -v section="$section" -v b="<!-- $name:begin" -v e="<!-- $name:end -->" '
        index($0, b) { while ((getline line < section) > 0) print line; skip = 1; next }
        index($0, e) { skip = 0; next }
        !skip { print }
    ' "$out" >"$out.splice.$$"
    cat "$out.splice.$$" >"$out"
    rm -f "$out.splice.$$"
}
