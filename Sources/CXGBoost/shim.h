// XGBoost's C API, opened with dlopen on first use instead of linked: loading libxgboost and its C++ runtime
// (libstdc++, libgomp, libdmlc) costs every `kiln` process ~2 ms at start, and most commands never train a tree.
// The table's entries take their types from the header, so a signature cannot drift from the library's.
#include <xgboost/c_api.h>
#include <dlfcn.h>
#include <stddef.h>

#define KILN_XGB_FUNCTIONS(X) \
    X(XGBoostVersion) X(XGBGetLastError) X(XGDMatrixCreateFromMat) X(XGDMatrixSetFloatInfo) \
    X(XGDMatrixSetUIntInfo) X(XGDMatrixFree) X(XGBoosterCreate) X(XGBoosterFree) X(XGBoosterSetParam) \
    X(XGBoosterUpdateOneIter) X(XGBoosterEvalOneIter) X(XGBoosterSlice) X(XGBoosterPredictFromDMatrix) \
    X(XGBoosterPredictFromDense) X(XGBoosterSaveModelToBuffer) X(XGBoosterLoadModelFromBuffer) \
    X(XGBoosterFeatureScore) X(XGBoosterBoostedRounds)

#define KILN_XGB_FIELD(name) __typeof__(name) * _Nonnull name;
/// The XGBoost functions Kiln calls.
typedef struct { KILN_XGB_FUNCTIONS(KILN_XGB_FIELD) } KilnXGBoostAPI;
#undef KILN_XGB_FIELD

/// Opens libxgboost and fills `api`; NULL on success, else what went wrong (dlerror's text).
static inline const char * _Nullable kiln_xgboost_open(KilnXGBoostAPI * _Nonnull api) {
    void *library = dlopen("libxgboost.so.0", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) library = dlopen("libxgboost.so", RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) return dlerror();
#define KILN_XGB_LOAD(name) \
    if ((*(void **)&api->name = dlsym(library, #name)) == NULL) return "libxgboost lacks " #name;
    KILN_XGB_FUNCTIONS(KILN_XGB_LOAD)
#undef KILN_XGB_LOAD
    return NULL;
}
