# NX_CHECK_CFLAGS: the warning flags every build uses (curl's discipline:
# no warnings with -Wall -Wextra). --enable-werror turns them into errors.
AC_DEFUN([NX_CHECK_CFLAGS], [
  WARN_CFLAGS="-Wall -Wextra -Wformat=2 -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter -Wno-missing-field-initializers"
  AC_ARG_ENABLE([werror],
    [AS_HELP_STRING([--enable-werror], [treat compiler warnings as errors])],
    [], [enable_werror=no])
  AS_IF([test "x$enable_werror" = xyes], [WARN_CFLAGS="$WARN_CFLAGS -Werror"])
  AC_SUBST([WARN_CFLAGS])
])
