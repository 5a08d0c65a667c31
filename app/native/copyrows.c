/* Rows as the data of COPY ... FROM STDIN in PostgreSQL's text format, in C: what
 * app.projections.copy_text's generated encoders write (the Python stays the reference and the
 * fallback; tests hold the two equal), escapes included, in one pass.
 *
 * encode_rows(data, codes, keyed, field, stamps, stamp) -> bytes
 *   data    rows (tuples), or with keyed: (key text, rows) pairs, each line starting with the key
 *   codes   bytes, one per column: t text, i a number (its str()), b boolean, s timestamptz
 *           (a UTC datetime of a four-digit year as isoformat() writes it, else
 *           stamps.get(value) or stamp(value)), o anything else (a str escaped, else field(value))
 *   field   copy_text.field: a value's field, escaped
 * None is \N in every column. A text value's backslash, tab, newline and carriage return are
 * escaped; a NUL, which no PostgreSQL text holds (and validation keeps out of every stored
 * resource), is a ValueError. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t size, capacity;
} Buffer;

static int reserve(Buffer *b, Py_ssize_t more)
{
    if (b->size + more <= b->capacity)
        return 0;
    Py_ssize_t capacity = b->capacity ? b->capacity : 4096;
    while (capacity < b->size + more) {
        if (capacity > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        capacity *= 2;
    }
    char *data = PyMem_Realloc(b->data, (size_t)capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->capacity = capacity;
    return 0;
}

static int append(Buffer *b, const char *text, Py_ssize_t n)
{
    if (reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->size, text, (size_t)n);
    b->size += n;
    return 0;
}

static int append_char(Buffer *b, char c)
{
    if (reserve(b, 1) < 0)
        return -1;
    b->data[b->size++] = c;
    return 0;
}

/* a str's UTF-8, escaped (escape) or as it is */
static int append_text(Buffer *b, PyObject *s, int escape)
{
    Py_ssize_t n;
    const char *text = PyUnicode_AsUTF8AndSize(s, &n);
    if (text == NULL)
        return -1;
    if (!escape)
        return append(b, text, n);
    if (reserve(b, 2 * n) < 0) /* every byte escaped at most doubles */
        return -1;
    char *out = b->data + b->size;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = text[i];
        switch (c) {
        case '\\': *out++ = '\\'; *out++ = '\\'; break;
        case '\t': *out++ = '\\'; *out++ = 't'; break;
        case '\n': *out++ = '\\'; *out++ = 'n'; break;
        case '\r': *out++ = '\\'; *out++ = 'r'; break;
        case '\0':
            PyErr_SetString(PyExc_ValueError, "a text value holds a NUL character, which PostgreSQL text cannot");
            return -1;
        default: *out++ = c;
        }
    }
    b->size = out - b->data;
    return 0;
}

/* the str a Python callable returns for value, appended as it is */
static int append_called(Buffer *b, PyObject *function, PyObject *value)
{
    PyObject *text = PyObject_CallOneArg(function, value);
    if (text == NULL)
        return -1;
    int r;
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "a COPY field must be str, not %.100s", Py_TYPE(text)->tp_name);
        r = -1;
    } else {
        r = append_text(b, text, 0);
    }
    Py_DECREF(text);
    return r;
}

static char *two_digits(char *out, int value)
{
    out[0] = (char)('0' + value / 10);
    out[1] = (char)('0' + value % 10);
    return out + 2;
}

/* isoformat() of a UTC datetime of a four-digit year: what copy_text.utc_isoformat writes */
static int append_utc(Buffer *b, PyObject *value, int year)
{
    if (reserve(b, 32) < 0)
        return -1;
    char *out = two_digits(two_digits(b->data + b->size, year / 100), year % 100);
    *out++ = '-';
    out = two_digits(out, PyDateTime_GET_MONTH(value));
    *out++ = '-';
    out = two_digits(out, PyDateTime_GET_DAY(value));
    *out++ = 'T';
    out = two_digits(out, PyDateTime_DATE_GET_HOUR(value));
    *out++ = ':';
    out = two_digits(out, PyDateTime_DATE_GET_MINUTE(value));
    *out++ = ':';
    out = two_digits(out, PyDateTime_DATE_GET_SECOND(value));
    int micro = PyDateTime_DATE_GET_MICROSECOND(value);
    if (micro) {
        *out++ = '.';
        out = two_digits(two_digits(two_digits(out, micro / 10000), micro / 100 % 100), micro % 100);
    }
    memcpy(out, "+00:00", 6);
    b->size = out + 6 - b->data;
    return 0;
}

typedef struct {
    const char *codes;
    Py_ssize_t columns;
    PyObject *field, *stamps, *stamp;
} Encoder;

static int append_number(Buffer *b, PyObject *value)
{
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (!overflow) {
            if (n == -1 && PyErr_Occurred())
                return -1;
            char digits[24];
            char *end = digits + sizeof digits, *start = end;
            unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
            do {
                *--start = (char)('0' + u % 10);
                u /= 10;
            } while (u);
            if (n < 0)
                *--start = '-';
            return append(b, start, end - start);
        }
    }
    PyObject *text = PyObject_Str(value);
    if (text == NULL)
        return -1;
    int r = append_text(b, text, 0);
    Py_DECREF(text);
    return r;
}

static int append_field(Buffer *b, const Encoder *e, char code, PyObject *value)
{
    if (value == Py_None)
        return append(b, "\\N", 2);
    switch (code) {
    case 't':
        if (PyUnicode_CheckExact(value))
            return append_text(b, value, 1);
        return append_called(b, e->field, value);
    case 'i':
        return append_number(b, value);
    case 'b': {
        int truth = PyObject_IsTrue(value);
        return truth < 0 ? -1 : append_char(b, truth ? 't' : 'f');
    }
    case 's': {
        if (PyDateTime_CheckExact(value) && PyDateTime_DATE_GET_TZINFO(value) == PyDateTime_TimeZone_UTC) {
            int year = PyDateTime_GET_YEAR(value);
            if (year > 999 && year < 9999)
                return append_utc(b, value, year);
        }
        PyObject *known = PyDict_GetItemWithError(e->stamps, value); /* borrowed */
        if (known != NULL && PyUnicode_Check(known) && PyUnicode_GET_LENGTH(known) > 0)
            return append_text(b, known, 0);
        if (known == NULL && PyErr_Occurred())
            return -1;
        return append_called(b, e->stamp, value);
    }
    default:
        if (PyUnicode_CheckExact(value))
            return append_text(b, value, 1); /* field's own text of a str */
        return append_called(b, e->field, value);
    }
}

static int append_row(Buffer *b, const Encoder *e, PyObject *key, PyObject *row)
{
    PyObject *fast = PySequence_Fast(row, "a COPY row must be a sequence");
    if (fast == NULL)
        return -1;
    int r = 0;
    if (PySequence_Fast_GET_SIZE(fast) != e->columns) {
        PyErr_Format(PyExc_ValueError, "a COPY row of %zd values for %zd columns", PySequence_Fast_GET_SIZE(fast),
                     e->columns);
        r = -1;
    }
    if (r == 0 && key != NULL)
        r = append_text(b, key, 0) < 0 || append_char(b, '\t') < 0 ? -1 : 0;
    for (Py_ssize_t i = 0; r == 0 && i < e->columns; i++) {
        if (i > 0 && append_char(b, '\t') < 0) {
            r = -1;
            break;
        }
        if (PySequence_Fast_GET_SIZE(fast) != e->columns) { /* a list row changed by field or stamp */
            PyErr_SetString(PyExc_RuntimeError, "a COPY row changed while it was encoded");
            r = -1;
            break;
        }
        PyObject *value = PySequence_Fast_GET_ITEM(fast, i);
        Py_INCREF(value); /* held while field or stamp run */
        r = append_field(b, e, e->codes[i], value);
        Py_DECREF(value);
    }
    if (r == 0)
        r = append_char(b, '\n');
    Py_DECREF(fast);
    return r;
}

static int append_keyed(Buffer *b, const Encoder *e, PyObject *pair)
{
    PyObject *fast = PySequence_Fast(pair, "keyed rows must be (key, rows) pairs");
    if (fast == NULL)
        return -1;
    int r = 0;
    PyObject *key = NULL, *rows = NULL;
    if (PySequence_Fast_GET_SIZE(fast) != 2 || !PyUnicode_Check(PySequence_Fast_GET_ITEM(fast, 0))) {
        PyErr_SetString(PyExc_TypeError, "keyed rows must be (key text, rows) pairs");
        r = -1;
    } else {
        key = PySequence_Fast_GET_ITEM(fast, 0);
        rows = PySequence_Fast(PySequence_Fast_GET_ITEM(fast, 1), "a resource's rows must be a sequence");
        r = rows == NULL ? -1 : 0;
    }
    for (Py_ssize_t i = 0; r == 0 && i < PySequence_Fast_GET_SIZE(rows); i++)
        r = append_row(b, e, key, PySequence_Fast_GET_ITEM(rows, i));
    Py_XDECREF(rows);
    Py_DECREF(fast);
    return r;
}

static PyObject *encode_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 || !PyBytes_Check(args[1]) || !PyDict_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "encode_rows(data, codes: bytes, keyed, field, stamps: dict, stamp)");
        return NULL;
    }
    Encoder e = {PyBytes_AS_STRING(args[1]), PyBytes_GET_SIZE(args[1]), args[3], args[4], args[5]};
    int keyed = PyObject_IsTrue(args[2]);
    if (keyed < 0)
        return NULL;
    PyObject *data = PySequence_Fast(args[0], "COPY data must be a sequence");
    if (data == NULL)
        return NULL;
    Buffer b = {NULL, 0, 0};
    int r = 0;
    for (Py_ssize_t i = 0; r == 0 && i < PySequence_Fast_GET_SIZE(data); i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(data, i);
        r = keyed ? append_keyed(&b, &e, item) : append_row(&b, &e, NULL, item);
    }
    Py_DECREF(data);
    PyObject *out = r == 0 ? PyBytes_FromStringAndSize(b.data ? b.data : "", b.size) : NULL;
    PyMem_Free(b.data);
    return out;
}

static PyMethodDef methods[] = {
    {"encode_rows", (PyCFunction)(void (*)(void))encode_rows, METH_FASTCALL,
     "encode_rows(data, codes, keyed, field, stamps, stamp) -> bytes"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_copyrows", NULL, 0, methods};

PyMODINIT_FUNC PyInit__copyrows(void)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL)
        return NULL;
    return PyModule_Create(&module);
}
