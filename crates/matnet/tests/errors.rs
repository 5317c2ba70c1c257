//! Shape mismatches panic with a message naming the op and both shapes.

use matnet::Tensor;

#[test]
#[should_panic(expected = "matmul: shapes [2, 3] and [4, 5]: inner dimensions 3 and 4 differ")]
fn matmul_inner_mismatch() {
    Tensor::zeros([2, 3]).matmul(&Tensor::zeros([4, 5]));
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4] cannot be broadcast together")]
fn add_broadcast_mismatch() {
    Tensor::zeros([2, 3]).add(&Tensor::zeros([4]));
}

#[test]
#[should_panic(expected = "matmul: shapes [2, 2, 3] and [3, 3, 4] cannot be broadcast together")]
fn matmul_batch_mismatch() {
    Tensor::zeros([2, 2, 3]).matmul(&Tensor::zeros([3, 3, 4]));
}

#[test]
#[should_panic(expected = "reshape: cannot view shape [2, 3] (6 elements) as [4] (4 elements)")]
fn reshape_count_mismatch() {
    Tensor::zeros([2, 3]).reshape([4]);
}

#[test]
#[should_panic(expected = "cat: shapes [2, 3] and [3, 3] differ outside dim 1")]
fn cat_mismatch() {
    Tensor::cat(&[Tensor::zeros([2, 3]), Tensor::zeros([3, 3])], 1);
}

#[test]
#[should_panic(expected = "gather: index 4 out of range 0..3")]
fn gather_out_of_range() {
    Tensor::zeros([2, 3]).gather(1, &Tensor::from_vec(vec![0., 4.], [2, 1]));
}

#[test]
fn try_from_vec_reports_instead_of_panicking() {
    let err = Tensor::try_from_vec(vec![1.0; 5], [2, 3]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "5 values do not fill shape [2, 3] (6 needed)"
    );
}

#[test]
fn display_prints_rows() {
    let a = Tensor::from_vec(vec![19., 22., 43., 50.], [2, 2]);
    assert_eq!(format!("{a}"), "[[19, 22],\n [43, 50]]");
    assert_eq!(
        format!("{:.1}", Tensor::from_vec(vec![0.5, 1.25], [2])),
        "[0.5, 1.2]"
    );
}
