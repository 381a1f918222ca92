# NX_PROVIDER(NAME, PKG-CONFIG-MODULES, DEFAULT)
# --with-NAME / --without-NAME for a hypervisor provider. "yes" requires the
# modules; "check" (the default when DEFAULT is check) builds it if they exist.
# Defines WITH_NAME (config.h), the automake conditional WITH_NAME, and
# NAME_CFLAGS/NAME_LIBS (upper case).
AC_DEFUN([NX_PROVIDER], [
  m4_pushdef([UP], m4_toupper([$1]))
  AC_ARG_WITH([$1],
    [AS_HELP_STRING([--with-$1], [build the $1 provider (default: $3)])],
    [], [with_$1=$3])
  AS_CASE(["$with_$1"],
    [yes], [PKG_CHECK_MODULES(UP, [$2])],
    [check], [PKG_CHECK_MODULES(UP, [$2], [with_$1=yes], [with_$1=no])],
    [no], [],
    [AC_MSG_ERROR([--with-$1 takes yes, no or check])])
  AS_IF([test "x$with_$1" = xyes],
        [AC_DEFINE([WITH_]UP, [1], [Build the $1 provider])])
  AM_CONDITIONAL([WITH_]UP, [test "x$with_$1" = xyes])
  m4_popdef([UP])
])
