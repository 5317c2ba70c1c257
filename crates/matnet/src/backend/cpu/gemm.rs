//! Temporary stand-in; replaced by the packed AVX2 kernel.
#[allow(clippy::too_many_arguments)]
/// # Safety
/// Pointers valid for the given strides.
pub unsafe fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    a: *const f32,
    rsa: isize,
    csa: isize,
    b: *const f32,
    rsb: isize,
    csb: isize,
    c: *mut f32,
    rsc: isize,
    csc: isize,
    accumulate: bool,
    _threads: usize,
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0f32;
            for p in 0..k {
                s += *a.offset(i as isize * rsa + p as isize * csa)
                    * *b.offset(p as isize * rsb + j as isize * csb);
            }
            let cp = c.offset(i as isize * rsc + j as isize * csc);
            if accumulate {
                *cp += s
            } else {
                *cp = s
            }
        }
    }
}
