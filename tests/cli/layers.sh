# The folders are layers, each using only those below it (README "Layout"):
# src/ (engine and pure models) <- serving/ (a model version) <- pipeline/
# (stages and runner) <- cli/ (commands). Checked on the object files with nm:
# no symbol an object of a lower folder references may be defined in a higher
# one. The list printed must stay empty. As a control, the same check with
# the order reversed must find references (cli/main.o calls into every layer),
# so an empty list means the check saw the objects, not that it saw nothing.
set -u
root=${LTV_ROOT:?}
build=${LTV_BUILD:-$root/build}
cd "$root" || exit 1
layers="src serving pipeline cli"

# "rank path" for every C file of the layers (src/models/ is part of src/).
sources() {
	local rank=0 d
	for d in $layers; do
		find "$d" -name '*.c' | sort | sed "s|^|$rank |"
		rank=$((rank + 1))
	done
}

# One line per symbol: "D rank path symbol" (defined) or "U rank path symbol",
# from one nm over every object (nm -A prefixes each line with its object).
symbols() {
	local rank path obj objs=()
	while read -r rank path; do
		obj=$build/${path%.c}.o
		if [ ! -f "$obj" ]; then
			echo "missing object $obj; build first (make)" >&2
			return 1
		fi
		objs+=("$obj")
		echo "R $rank $path $obj"
	done < <(sources)
	nm -A -g "${objs[@]}" | sed 's/:/ /'
}

# Prints "user -> definer: symbol" for each reference from a lower rank to a
# higher one; with reverse=1 the ranks are read the other way round.
check() {
	awk -v reverse="$1" '
		$1 == "R" { rank[$4] = $2; path[$4] = $3; next }
		# "obj address type symbol" when defined, "obj U symbol" when not
		NF == 4 && $3 ~ /^[BCDGRSTVW]$/ { def_rank[$4] = rank[$1]; def_path[$4] = path[$1]; next }
		NF == 3 && $2 == "U" { n++; use_rank[n] = rank[$1]; use_path[n] = path[$1]; use_sym[n] = $3 }
		END {
			for (i in use_sym) {
				s = use_sym[i]
				if (!(s in def_rank))
					continue
				up = reverse ? def_rank[s] < use_rank[i] : def_rank[s] > use_rank[i]
				if (up)
					print use_path[i] " -> " def_path[s] ": " s
			}
		}' "$tmp" | sort
}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
symbols >"$tmp" || exit 1
echo "layers, lowest first: $layers"
echo "references running back up:"
check 0 | sed 's/^/  /'
echo "end"
n=$(check 1 | grep -c ' -> ')
[ "$n" -gt 0 ] && echo "control: with the order reversed the check finds references"
