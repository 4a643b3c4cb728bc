# common.mk - shared by the workflows in pipelines/.
#
# Programs come from build/ when run in the source tree (make builds them
# first), else from PATH (after make install).  Every stage writes to a
# temporary file renamed into place, so an interrupted run never leaves a
# half-written stream that make would take for finished.

MTL_BIN ?= $(if $(wildcard build/mtl-step build/mtl-dump),build/,)
.DELETE_ON_ERROR:
# run CMD >TARGET: write $@ through $@.tmp
define commit
mv -f $@.tmp $@
endef
