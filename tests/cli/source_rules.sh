# House rules that a compiler does not check (../shared/STYLE.md): only the
# registry module includes sqlite3.h; xgboost's header is included by the
# XGBoost wrapper's internal header (src/models/gbt_internal.h) and by the
# logger (XGBRegisterLogCallback) alone; model code in src/models/ touches
# neither SQLite, YAML nor files. Each list printed here must stay as it is.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
echo "files including sqlite3.h:"
grep -l '#include <sqlite3.h>' $(git ls-files 'src/*' 'serving/*' 'pipeline/*' 'cli/*' 'include/*' 2>/dev/null || find src serving pipeline cli include -type f) | sort | sed 's/^/  /'
echo "files including xgboost/c_api.h:"
grep -l '#include <xgboost/c_api.h>' $(git ls-files 'src/*' 'serving/*' 'pipeline/*' 'cli/*' 'include/*' 2>/dev/null || find src serving pipeline cli include -type f) | sort | sed 's/^/  /'
echo "model files using SQLite, YAML or stdio file calls:"
grep -lE 'sqlite3|yaml\.h|fopen\(|registry_' src/models/*.c | sed 's/^/  /'
echo "end"
